"""The inbox side of the demo: agent logins, canned responses, labels, and ``seed_demo``, which seeds everything."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from shopdesk.db import session_maker
from shopdesk.settings import Settings

DEMO_ADMIN = ("admin@demo.shopdesk.test", "demo-admin-pass", "Alex Admin")
DEMO_AGENT = ("agent@demo.shopdesk.test", "demo-agent-pass", "Sam Agent")

CANNED = [
    ("tracking", "Tracking link", "Hi {{ customer.first_name or 'there' }}! Your order {{ order.name }} can be tracked here: {{ tracking_link }}"),
    ("thanks", "Thanks for waiting", "Thanks for your patience, {{ customer.first_name or 'there' }}. I'm looking into this now."),
    ("refund-eta", "Refund timing", "Refunds reach your original payment method within 5-10 business days after we receive the return."),
]
LABELS = [("vip", "#b45309"), ("damaged", "#b91c1c"), ("wholesale", "#1d4ed8"), ("follow-up", "#047857")]


async def seed_demo(engine: AsyncEngine, settings: Settings, *, seed: int = 7) -> str:
    """Seed orders (idempotently) plus demo logins; return the text that tells a newcomer what to try."""
    from inbox.actions.agent_create import agent_create
    from inbox.actions.canned_save import canned_save
    from inbox.actions.label_save import label_save
    from inbox.models import Agent, CannedResponse, Label
    from shopdesk.demo.seed import seed_demo_orders

    sessions = session_maker(engine)
    summary = await seed_demo_orders(sessions, seed=seed)
    async with sessions() as session:
        for email, password, name in (DEMO_ADMIN, DEMO_AGENT):
            existing = (await session.exec(select(Agent).where(Agent.email == email))).first()
            if existing is None:
                await agent_create(session, email, password, name=name, admin=email == DEMO_ADMIN[0])
        for shortcut, title, body in CANNED:
            if (await session.exec(select(CannedResponse).where(CannedResponse.shortcut == shortcut))).first() is None:
                await canned_save(session, shortcut, title, body)
        for name, color in LABELS:
            if (await session.exec(select(Label).where(Label.name == name))).first() is None:
                await label_save(session, name, color)
        await session.commit()
    base = settings.public_url.rstrip("/")
    lines = [
        f"  Shop with chat widget:  {base}/shop   (the chat button is at the bottom right)",
        f"  Agents' inbox:          {base}/inbox  (open it in another window to watch chats arrive)",
        f"  Admin login:  {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}",
        f"  Agent login:  {DEMO_AGENT[0]} / {DEMO_AGENT[1]}",
    ]
    tips = [
        'In the chat, say "hi" or "where is my order?", "I want to return something" (#1002),',
        '"cancel my order" (#1005) or "talk to a person"; English, Spanish, Russian, Vietnamese',
        "and Chinese all work. Late or stuck parcels (#1003, #1004) reach the inbox as high priority.",
    ]
    head, *try_lines = summary.text().splitlines()
    return "\n".join([head, *lines, *try_lines, *tips])
