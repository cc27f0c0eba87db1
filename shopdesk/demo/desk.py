"""The inbox side of the demo: agent logins, canned responses, labels, and ``seed_demo``, which seeds everything."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from shopdesk.db import session_maker
from shopdesk.settings import Settings

DEMO_ADMIN = ("admin@demo.shopdesk.test", "demo-admin-pass", "Alex Admin")
DEMO_AGENT = ("agent@demo.shopdesk.test", "demo-agent-pass", "Sam Agent")

#: (shortcut, title, body per language): the demo shop answers in all six languages
CANNED: list[tuple[str, str, dict[str, str]]] = [
    ("tracking", "Tracking link", {
        "en": "Hi {{ customer.first_name or 'there' }}! Your order {{ order.name }} can be tracked here: {{ tracking_link }}",
        "es": "¡Hola{{ ' ' ~ customer.first_name if customer.first_name }}! Puedes seguir tu pedido {{ order.name }} aquí: {{ tracking_link }}",
        "ru": "Здравствуйте{{ ', ' ~ customer.first_name if customer.first_name }}! Отследить заказ {{ order.name }} можно здесь: {{ tracking_link }}",
        "vi": "Xin chào{{ ' ' ~ customer.first_name if customer.first_name }}! Bạn có thể theo dõi đơn hàng {{ order.name }} tại đây: {{ tracking_link }}",
        "zh-Hans": "您好{{ '，' ~ customer.first_name if customer.first_name }}！您的订单 {{ order.name }} 可以在这里查询物流：{{ tracking_link }}",
        "zh-Hant": "您好{{ '，' ~ customer.first_name if customer.first_name }}！您的訂單 {{ order.name }} 可以在這裡查詢物流：{{ tracking_link }}",
    }),
    ("thanks", "Thanks for waiting", {
        "en": "Thanks for your patience, {{ customer.first_name or 'there' }}. I'm looking into this now.",
        "es": "Gracias por tu paciencia{{ ', ' ~ customer.first_name if customer.first_name }}. Lo estoy revisando ahora mismo.",
        "ru": "Спасибо за терпение{{ ', ' ~ customer.first_name if customer.first_name }}. Я уже разбираюсь.",
        "vi": "Cảm ơn bạn đã kiên nhẫn chờ{{ ', ' ~ customer.first_name if customer.first_name }}. Mình đang kiểm tra ngay.",
        "zh-Hans": "感谢您的耐心等待{{ '，' ~ customer.first_name if customer.first_name }}。我正在为您处理。",
        "zh-Hant": "感謝您的耐心等候{{ '，' ~ customer.first_name if customer.first_name }}。我正在為您處理。",
    }),
    ("refund-eta", "Refund timing", {
        "en": "Refunds reach your original payment method within 5-10 business days after we receive the return.",
        "es": "El reembolso llega a tu método de pago original en 5-10 días hábiles después de recibir la devolución.",
        "ru": "Деньги вернутся на исходный способ оплаты в течение 5-10 рабочих дней после получения возврата.",
        "vi": "Tiền hoàn sẽ về phương thức thanh toán ban đầu trong 5-10 ngày làm việc sau khi chúng tôi nhận được hàng trả.",
        "zh-Hans": "我们收到退货后，退款将在 5-10 个工作日内退回您的原支付方式。",
        "zh-Hant": "我們收到退貨後，退款將在 5-10 個工作天內退回您的原付款方式。",
    }),
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
        for shortcut, title, bodies in CANNED:
            if (await session.exec(select(CannedResponse).where(CannedResponse.shortcut == shortcut))).first() is None:
                await canned_save(session, shortcut, title, bodies)
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
