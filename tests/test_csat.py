"""CSAT (issue 13 item 3) on SQLite and PostgreSQL: a rating question after a conversation is
resolved by a person or by the bot, on Telegram and on the widget; typed or pressed answers;
the comment; the answer never reopens the conversation, anything else does; no survey for an
abusive customer, one rated in the last 7 days, or twice for one conversation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from bot_chat import Chat
from sqlmodel import col

from inbox.actions.agent_create import agent_create
from inbox.actions.conversation_assign import conversation_assign
from inbox.actions.conversation_status import conversation_status
from inbox.models import Channel, Conversation, ConversationStatus, CsatSurvey, OutboxMessage
from inbox.proactive import set_update_kind
from inbox.queries.csat import conversation_rating, customer_ratings
from inbox.replies import render_reply, reply_label
from shopbase.clock import utcnow
from tests.db_helpers import count, rows


async def _agent(sessions: Any) -> Any:
    async with sessions() as session:
        agent = await agent_create(session, f"a{utcnow().timestamp()}@shop.test", "correct horse battery", name="Mia")
        await session.commit()
        return agent


async def _resolve(sessions: Any, chat: Chat, agent: Any) -> list[dict[str, Any]]:
    """An agent takes the conversation and resolves it; returns what went to the customer."""
    before = await count(sessions, OutboxMessage, col(OutboxMessage.conversation_id) == chat.conversation_id)
    async with sessions() as session:
        conversation = await session.get(Conversation, chat.conversation_id)
        await conversation_assign(session, conversation, await session.get(type(agent), agent.id), by=agent)
        await conversation_status(session, conversation, ConversationStatus.resolved, by=agent, survey=True)
        await session.commit()
    sent = await rows(sessions, OutboxMessage, col(OutboxMessage.conversation_id) == chat.conversation_id)
    return [r.payload for r in sent[before:]]


async def _conversation(sessions: Any, chat: Chat) -> Conversation:
    async with sessions() as session:
        return await session.get(Conversation, chat.conversation_id)


async def _survey(sessions: Any, chat: Chat) -> CsatSurvey | None:
    found = await rows(sessions, CsatSurvey, col(CsatSurvey.conversation_id) == chat.conversation_id)
    return found[0] if found else None


@pytest.mark.parametrize("channel", [Channel.telegram, Channel.webchat])
async def test_agent_resolves_then_rating_and_comment_keep_it_resolved(sessions, settings, channel) -> None:  # type: ignore[no-untyped-def]
    agent = await _agent(sessions)
    chat = Chat(sessions, settings, user=f"c-{channel.value}", channel=channel, lang="en")
    await chat.send("I want to talk to a person")
    first_id = chat.conversation_id
    [question] = await _resolve(sessions, chat, agent)
    assert question["text"] == render_reply("csat_ask", "en")
    assert [q["value"] for q in question["quick_replies"]] == [f"csat:{n}" for n in range(1, 6)]

    replies = await chat.send("★★★★")
    assert chat.conversation_id == first_id
    assert replies[0].text == render_reply("csat_ask_comment", "en")
    assert replies[0].quick_replies == [(reply_label("csat_skip", "en"), "csat:skip")]
    conversation = await _conversation(sessions, chat)
    assert conversation.status == ConversationStatus.resolved
    survey = await _survey(sessions, chat)
    assert (survey.rating, survey.agent_id, survey.resolved_by) == (4, agent.id, "agent")

    replies = await chat.send("Mia was quick and friendly")
    assert [r.text for r in replies] == [render_reply("csat_thanks", "en")]
    survey = await _survey(sessions, chat)
    assert survey.comment == "Mia was quick and friendly"
    assert (await _conversation(sessions, chat)).status == ConversationStatus.resolved

    async with sessions() as session:
        shown = await conversation_rating(session, first_id)
        assert shown is not None and shown.rating == 4
        history = await customer_ratings(session, conversation.contact_id)
        assert [s.rating for s in history] == [4]


async def test_bot_goodbye_resolves_and_asks_typed_word_and_skip(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(sessions, settings, user="w-bye", channel=Channel.webchat, lang="en")
    await chat.send("hello")
    replies = await chat.send("bye")
    assert [r.text for r in replies] == [render_reply("goodbye", "en", shop=settings.shop_name),
                                         render_reply("csat_ask", "en")]
    assert (await _conversation(sessions, chat)).status == ConversationStatus.resolved
    await chat.send("great")
    assert (await _survey(sessions, chat)).rating == 5
    assert (await _survey(sessions, chat)).resolved_by == "bot"
    replies = await chat.press("csat:skip")
    assert [r.text for r in replies] == [render_reply("csat_thanks", "en")]
    survey = await _survey(sessions, chat)
    assert survey.comment is None and survey.rating == 5
    assert (await _conversation(sessions, chat)).status == ConversationStatus.resolved


@pytest.mark.parametrize("lang, hello, bye, answer, rating", [
    ("ru", "привет", "до свидания", "отлично", 5),
    ("es", "hola", "adiós", "3", 3),
    ("zh-Hans", "你好", "再见", "不满意", 2),
])
async def test_survey_in_the_customers_language(sessions, settings, lang, hello, bye, answer, rating) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(sessions, settings, user=f"l-{lang}", channel=Channel.telegram, lang=lang)
    await chat.send(hello)
    replies = await chat.send(bye)
    assert replies[-1].text == render_reply("csat_ask", lang)
    assert replies[-1].quick_replies[4] == (reply_label("csat_5", lang), "csat:5")
    await chat.send(answer)
    assert (await _survey(sessions, chat)).rating == rating


async def test_a_button_press_rates(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(sessions, settings, user="tg-press", channel=Channel.telegram, lang="en")
    await chat.send("hi")
    await chat.send("goodbye")
    await chat.press("csat:2")
    assert (await _survey(sessions, chat)).rating == 2


async def test_a_new_request_instead_of_a_rating_reopens_the_conversation(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    agent = await _agent(sessions)
    chat = Chat(sessions, settings, user="tg-new", channel=Channel.telegram, lang="en")
    await chat.send("I need a human")
    first_id = chat.conversation_id
    await _resolve(sessions, chat, agent)
    await chat.send("where is my order?")
    assert chat.conversation_id == first_id
    conversation = await _conversation(sessions, chat)
    assert conversation.status == ConversationStatus.open
    assert render_reply("verify_ask_order", "en") in chat.text  # handled as a normal request
    assert (await _survey(sessions, chat)).rating is None
    await chat.send("5")  # the survey is over: "5" is no rating any more
    assert (await _survey(sessions, chat)).rating is None


async def test_no_survey_for_an_abusive_customer(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    agent = await _agent(sessions)
    chat = Chat(sessions, settings, user="tg-abuse", channel=Channel.telegram, lang="en")
    await chat.send("where the hell is my order, you useless scammers")
    assert await _resolve(sessions, chat, agent) == []
    assert await _survey(sessions, chat) is None


async def test_one_survey_per_conversation_and_none_after_a_recent_rating(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    agent = await _agent(sessions)
    chat = Chat(sessions, settings, user="tg-twice", channel=Channel.telegram, lang="en")
    await chat.send("I need a human")
    await _resolve(sessions, chat, agent)
    await chat.send("I want to cancel my order")  # not an answer: reopened
    assert (await _conversation(sessions, chat)).status == ConversationStatus.open
    assert await _resolve(sessions, chat, agent) == []  # asked once for this conversation already

    other = Chat(sessions, settings, user="tg-rated", channel=Channel.telegram, lang="en")
    await other.send("I need a human")
    await _resolve(sessions, other, agent)
    await other.send("5")
    async with sessions() as session:  # a new conversation of the same customer, days later
        conversation = await session.get(Conversation, other.conversation_id)
        conversation.resolved_at = utcnow() - timedelta(days=30)
        conversation.bot_state = {}
        session.add(conversation)
        await session.commit()
    await other.send("I need a human again")
    assert other.conversation_id != conversation.id
    assert await _resolve(sessions, other, agent) == []  # rated 5 minutes ago


async def test_the_merchant_can_switch_surveys_off(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        await set_update_kind(session, "csat", False)
        await session.commit()
    chat = Chat(sessions, settings, user="tg-off", channel=Channel.telegram, lang="en")
    await chat.send("hi")
    replies = await chat.send("bye")
    assert [r.text for r in replies] == [render_reply("goodbye", "en", shop=settings.shop_name)]
    assert (await _conversation(sessions, chat)).status == ConversationStatus.resolved
    assert await _survey(sessions, chat) is None


# --------------------------------------------------------------------------- the inbox shows it


async def test_rating_shows_in_the_conversation_and_the_customer_sidebar(aiohttp_client, sessions, settings) -> None:  # type: ignore[no-untyped-def]
    from tests.web_helpers import add_agent, build_web_app, login

    await add_agent(sessions)
    chat = Chat(sessions, settings, user="w-shown", channel=Channel.webchat, lang="en")
    await chat.send("I need a human")
    client = await aiohttp_client(build_web_app(sessions).app)
    token = await login(client)
    resolved = await client.post(f"/inbox/c/{chat.conversation_id}/status",
                                 data={"csrf_token": token, "status": "resolved"}, allow_redirects=False)
    assert resolved.status == 303  # an agent resolves in the inbox: the customer is asked
    [question] = [r for r in await rows(sessions, OutboxMessage,
                                        col(OutboxMessage.conversation_id) == chat.conversation_id)
                  if r.payload["text"] == render_reply("csat_ask", "en")]
    head = await (await client.get(f"/inbox/c/{chat.conversation_id}/fragments/head")).text()
    assert "Rating asked" in head
    await chat.send("4")
    await chat.send("<script>alert(1)</script> slow reply")
    head = await (await client.get(f"/inbox/c/{chat.conversation_id}/fragments/head")).text()
    assert "Rated 4/5" in head and "<script>alert(1)" not in head
    side = await (await client.get(f"/inbox/c/{chat.conversation_id}/fragments/sidebar")).text()
    assert "<strong>4/5</strong>" in side and "&lt;script&gt;alert(1)&lt;/script&gt; slow reply" in side
    assert "Human agent" in side or "human" in side.lower()  # the intent it was about
    assert "Not allowed by the visitor" in side  # widget updates need the visitor's permission


# --------------------------------------------------------------------------- on Telegram's wire


async def test_telegram_rating_button_through_the_connector(aiohttp_client, aiohttp_server, settings, sessions) -> None:  # type: ignore[no-untyped-def]
    from bot.pipeline import Pipeline
    from inbox.events import EventBus
    from tests.fakes.telegram import FakeTelegram, make_callback_update, make_message_update
    from tests.test_telegram import make_env as make_tg_env
    from tests.test_telegram import tg_settings

    fake = FakeTelegram()
    server = await aiohttp_server(fake.app)
    fake.base_url = str(server.make_url("")).rstrip("/")
    s = tg_settings(settings, fake)
    env = await make_tg_env(aiohttp_client, fake, s, sessions,
                            processor=Pipeline(sessions=sessions, bus=EventBus(), settings=s).process)
    chat_id = 777
    await env.post(make_message_update(900, chat_id, "hello", language_code="en"))
    await env.settle()
    await env.post(make_message_update(901, chat_id, "bye", language_code="en"))
    await env.settle()
    question = fake.sent_messages(chat_id)[-1]
    assert question["text"] == render_reply("csat_ask", "en")
    keyboard = [b["callback_data"] for row in question["reply_markup"]["inline_keyboard"] for b in row]
    assert keyboard == [f"csat:{n}" for n in range(1, 6)]
    press = make_callback_update(902, chat_id, "csat:5", message_id=question["message_id"],
                                 reply_markup=question["reply_markup"])
    assert (await env.post(press)).status == 200
    await env.settle()
    assert fake.sent_messages(chat_id)[-1]["text"] == render_reply("csat_ask_comment", "en")
    [survey] = await rows(sessions, CsatSurvey)
    assert (survey.rating, survey.resolved_by) == (5, "bot")
    [conversation] = await rows(sessions, Conversation)
    assert conversation.status == ConversationStatus.resolved
    await env.post(press)  # Telegram retries the same update: nothing happens twice
    await env.settle()
    assert fake.sent_messages(chat_id)[-1]["text"] == render_reply("csat_ask_comment", "en")
    assert len([m for m in fake.sent_messages(chat_id) if m["text"] == render_reply("csat_ask_comment", "en")]) == 1
