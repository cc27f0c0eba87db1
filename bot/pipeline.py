"""Steps 3–5 of the story of one message: understand, act, commit the effect.

:meth:`Pipeline.process` reads top to bottom like ARCHITECTURE.md:

1. load the inbound message; skip it if it was processed already (a replay);
2. if an agent owns the conversation, the bot stays silent: mark it processed, done;
3. understand: language (with the channel's hint), intent, entities;
4. act: the dialog picks a handler, which asks ordersvc and renders replies from templates;
5. commit the effect: replies into the outbox, dialog state, escalation, alerts and the
   "processed" mark, all in ONE transaction. A crash before the commit means the message
   is processed again after restart; after it, the replies are sent exactly once.

A handler that fails is never silent: the turn is rolled back and, in a fresh transaction,
the customer gets an apology and the conversation goes to the agents.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Bundle
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import BotSettings
from bot.dialog.engine import respond
from bot.dialog.turn import BotConfig, DialogState, Turn
from bot.nlu import analyze
from bot.nlu.intents import CLARIFY_BELOW
from bot.understand_many import analyze_many
from inbox.actions.conversation_escalate import conversation_escalate
from inbox.actions.conversation_status import conversation_wake_snoozed
from inbox.actions.message_answer import message_answer
from inbox.actions.message_answer_group import AnswerGroup
from inbox.actions.message_mark_processed import message_mark_processed
from inbox.actions.message_send import message_send
from inbox.events import Event, EventBus
from inbox.messages import OutboundPayload
from inbox.models import Author, Contact, Conversation, Message, Owner, Priority
from inbox.outbox_handoff import BORN_CLAIMED, BornClaimed, HandOff
from inbox.replies import render_reply
from shopbase import stagetrace
from shopbase.dberrors import is_database_unavailable

__all__ = ["Pipeline", "TurnStats"]

log = logging.getLogger("shopdesk.bot")


#: what a turn reads of its message: a Bundle row (``row.id``, ``row.text`` ...), not an ORM object
#: (building one, with its JSON columns, cost more than the read); the answer writes it with Core
_MESSAGE_FIELDS: Bundle[Any] = Bundle("message", col(Message.id), col(Message.text), col(Message.postback),
                         col(Message.start_payload), col(Message.processed))
#: the message, its conversation (locked for the turn on PostgreSQL) and the contact; built once
_TURN_ROWS = (
    select(_MESSAGE_FIELDS, Conversation, Contact)
    .join(Conversation, col(Conversation.id) == Message.conversation_id)
    .join(Contact, col(Contact.id) == Conversation.contact_id)
    .where(col(Message.id) == sa.bindparam("b_id"))
    # the message too: a turn that waited for another's lock must read the message's latest
    # version (processed), not its snapshot's (PostgreSQL rechecks only the locked rows)
    .with_for_update(of=[Conversation, Message])
)


#: the same rows for every message of a micro-batch, in one read (in conversation order: on
#: PostgreSQL the locks are taken in one order everywhere; the messages locked too, as above)
def _batch_rows(ids: Any) -> Any:
    return (
        select(_MESSAGE_FIELDS, Conversation, Contact)
        .join(Conversation, col(Conversation.id) == Message.conversation_id)
        .join(Contact, col(Contact.id) == Conversation.contact_id)
        .where(ids)
        .order_by(col(Conversation.id))
        .with_for_update(of=[Conversation, Message])
    )


_BATCH_ROWS = _batch_rows(col(Message.id).in_(sa.bindparam("b_ids", expanding=True)))
#: on PostgreSQL the ids are one array parameter (``= ANY($1)``): the statement's text is the same
#: for every batch size, prepared once per connection (an expanding IN was a new statement,
#: parsed and planned again, for each size). The array is read by a sub-select (an init plan), so
#: no plan sees its length: with it in sight, the custom plan of a batch of fewer than 10 looked
#: cheaper than the generic one, and PostgreSQL planned the read again at every batch
#: (``tests/test_pg_plans.py``)
_IDS = postgresql.ARRAY(sa.Integer)
_BATCH_ROWS_PG = _batch_rows(col(Message.id) == sa.any_(sa.cast(
    sa.select(sa.cast(sa.bindparam("b_ids", type_=_IDS), _IDS)).scalar_subquery(), _IDS)))

#: ``Pipeline._turn`` reads the turn's rows itself
_READ: Any = object()

#: what the batch understood ahead of its turns: (text, hint language) -> result and seconds spent
_Understood = dict[tuple[str, str | None], tuple[Any, float]]
#: the current task's batch (``process_many`` sets it; a one-message turn finds it empty)
_UNDERSTOOD: ContextVar[_Understood | None] = ContextVar("shopdesk_batch_understood", default=None)


@dataclass(frozen=True)
class TurnStats:
    """What one bot turn did, for ``Pipeline.on_turn`` (the composition root's metrics)."""

    intent: str
    #: seconds spent in NLU (None: no text to read, e.g. a button press)
    understanding_seconds: float | None
    #: seconds from the understood message to the turn's written effects (dialog, handler, writes; the
    #: commit, which a micro-batch of turns shares, is not counted, nor are a micro-batch's common
    #: answers, written together just before it)
    handler_seconds: float
    #: "answered" (the bot handled it alone), "escalated" (handed to a person) or "failed"
    outcome: str
    escalation_reason: str | None = None


class Pipeline:
    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], bus: EventBus, settings: BotSettings) -> None:
        self.sessions = sessions
        self.bus = bus
        bind = sessions.kw.get("bind")
        self._batch_rows = _BATCH_ROWS_PG if bind is not None and bind.dialect.name == "postgresql" else _BATCH_ROWS
        self.config = BotConfig(
            shop_name=settings.shop_name,
            public_url=settings.public_url.rstrip("/"),
            timezone=settings.shop_timezone,
            secret_key=settings.secret_key_bytes() if settings.secret_key is not None else b"",
        )
        self.periodic_interval = 60.0
        #: several processes on one PostgreSQL: only the elected one runs run_periodic's work
        self.should_run_periodic: Callable[[], bool] = lambda: True
        #: called after each committed turn (never raises into the pipeline); None: nobody listens
        self.on_turn: Callable[[TurnStats], None] | None = None
        #: called right after a turn or a micro-batch committed its replies (the server: the outbox
        #: dispatcher's ``wake``), so they are claimed before the loop moves on to the next batch
        #: rather than when the event bus's pump gets its turn; must not raise
        self.on_commit: Callable[[], None] | None = None
        #: the outbox dispatcher that takes replies born claimed (``inbox.outbox_handoff``): a turn
        #: inserts its replies already leased when the dispatcher can send them at once, and hands
        #: them over after the commit (no claim transaction). None: every reply is claimed
        self.handoff: HandOff | None = None

    async def process(self, message_id: int) -> None:
        try:
            await self._process(message_id)
        except Exception as exc:
            if is_database_unavailable(exc):
                # not the message's fault: nothing was committed, the worker tries it again
                # once the database is back (no apology, no hand-over for a restart)
                raise
            log.exception("bot turn failed", extra={"message_id": message_id})
            await self._fail_safe(message_id)

    async def process_many(self, message_ids: list[int]) -> dict[int, Exception | None]:
        """Several messages of different conversations (the worker's micro-batch), committed
        together: every turn runs in ONE transaction and ONE commit stores all their effects
        (group commit), so a crash before it loses none of them for good (all are processed again)
        and after it every reply is sent once. The outcome per message id: None, or the error
        ``process`` would have raised.

        When a turn fails, nothing of the batch is kept and each message is processed again on
        its own (``process``): the others are answered as usual and the failing one gets the
        apology and the hand-over. No turn has effects outside the database, so running one
        twice changes nothing. A database outage fails the whole batch (nothing committed;
        the worker tries it again). Pass the ids in conversation order: on PostgreSQL each turn
        locks its conversation until the commit, and one order everywhere cannot deadlock."""
        if len(message_ids) == 1:
            return {message_ids[0]: await self._outcome(message_ids[0])}
        done: list[TurnStats] = []
        try:
            async with self.sessions() as session:
                born = self._born(session)
                # every turn's rows in one read; the common turns' answers written together
                loaded = {int(row[0].id): row for row in
                          (await session.exec(self._batch_rows, params={"b_ids": message_ids})).all()}
                group = AnswerGroup()
                ahead = _UNDERSTOOD.set(self._understand_batch(list(loaded.values())))
                try:
                    for message_id in message_ids:
                        stats = await self._turn(session, message_id, loaded.get(message_id), group)
                        if stats is not None:
                            done.append(stats)
                finally:
                    _UNDERSTOOD.reset(ahead)
                await group.write(session)
                await session.commit()
            self._committed(born, True)
            if stagetrace.ENABLED:
                stagetrace.mark_many("answered", message_ids)
        except Exception as exc:
            if is_database_unavailable(exc):
                return dict.fromkeys(message_ids, exc)
            log.info("a bot turn of a batch of %d failed (%s); processing them one at a time",
                     len(message_ids), type(exc).__name__)
            return {message_id: await self._outcome(message_id) for message_id in message_ids}
        for stats in done:
            self._observe(stats)
        return dict.fromkeys(message_ids)

    async def _outcome(self, message_id: int) -> Exception | None:
        try:
            await self.process(message_id)
        except Exception as exc:
            return exc
        return None

    async def _process(self, message_id: int) -> None:
        async with self.sessions() as session:
            born = self._born(session)
            stats = await self._turn(session, message_id)
            await session.commit()
        self._committed(born, stats is not None)
        if stagetrace.ENABLED:
            stagetrace.mark("answered", message_id)
        if stats is not None:
            self._observe(stats)

    def _born(self, session: AsyncSession) -> BornClaimed | None:
        """The transaction's collector of replies born claimed (None: no dispatcher takes them)."""
        if self.handoff is None:
            return None
        born = session.info[BORN_CLAIMED] = BornClaimed(self.handoff)
        return born

    def _committed(self, born: BornClaimed | None, wrote: bool) -> None:
        """After the commit: wake the dispatcher for the replies it must claim, then hand it the
        ones born claimed (in that order: the wake is not news to those)."""
        if self.on_commit is not None and wrote and (born is None or born.needs_claim):
            self.on_commit()
        if born is not None:
            try:
                born.deliver()
            except Exception:  # never fails the turn: the rows' leases run out and they are claimed
                log.exception("handing replies to the outbox failed")

    @staticmethod
    def _understand_batch(rows: list[Any]) -> _Understood:
        """The batch's texts understood in one vectorized call (``analyze_many``), keyed by what
        ``_turn`` would pass to ``analyze``: a turn whose text or hint is not here simply analyzes
        its own, so the outcome is the same as one at a time."""
        items = list(dict.fromkeys(
            (message.text or "", conversation.language or contact.language)
            for message, conversation, contact in rows
            if not message.processed and conversation.owner != Owner.agent and (message.text or "").strip()))
        if not items:
            return {}
        started = time.perf_counter()
        results = analyze_many(items)
        share = (time.perf_counter() - started) / len(items)
        return {item: (result, share) for item, result in zip(items, results, strict=True)}

    async def _turn(self, session: AsyncSession, message_id: int, loaded: Any = _READ,
                    group: AnswerGroup | None = None) -> TurnStats | None:
        """One bot turn's reads and writes in ``session`` (the caller commits); its stats, or
        None when the bot had nothing to do (a replay, or a person owns the conversation).
        A micro-batch passes the turn's rows it read (``loaded``; None: no such message) and the
        group its common answers are written with."""
        # the message, its conversation (locked for the turn on PostgreSQL) and the contact in one read
        found = (await session.exec(_TURN_ROWS, params={"b_id": message_id})).first() if loaded is _READ else loaded
        if found is None or found[0].processed:
            return None  # replay: already answered
        message, conversation, contact = found
        if conversation.owner == Owner.agent:
            await message_mark_processed(session, int(message.id))
            return None

        text = message.text or ""
        postback = _postback(message)
        hint = conversation.language or contact.language
        understood = _UNDERSTOOD.get()
        ahead = understood.get((text, hint)) if understood and text.strip() else None
        started = time.perf_counter()
        if ahead is not None:
            nlu, nlu_seconds = ahead
        else:
            nlu = analyze(text, hint_lang=hint) if text.strip() else None
            nlu_seconds = time.perf_counter() - started
        acted = time.perf_counter()
        turn = Turn(
            session=session,
            conversation=conversation,
            contact=contact,
            text=text,
            postback=postback,
            lang=_language(nlu, conversation, contact),
            now=datetime.now(UTC),
            config=self.config,
            state=DialogState.from_json(conversation.bot_state),
            intent=_intent(nlu)[0],
            confidence=_intent(nlu)[1],
            entities=list(nlu.entities) if nlu else [],
            ranking=tuple(nlu.ranking) if nlu else (),
            hostile=bool(nlu and nlu.hostile),
        )
        await respond(turn)
        born: BornClaimed | None = session.info.get(BORN_CLAIMED)
        if born is not None:
            born.know(contact)
            if turn.escalation is not None or turn.alerts:
                born.other_effects = True  # notices may be written: the dispatcher claims them
        await self._write_turn(session, turn, message, group)
        escalation = turn.escalation
        return TurnStats(
            intent=turn.intent, understanding_seconds=nlu_seconds if nlu is not None else None,
            handler_seconds=time.perf_counter() - acted,
            outcome="escalated" if escalation is not None else "answered",
            escalation_reason=escalation.reason if escalation is not None else None,
        )

    def _observe(self, stats: TurnStats) -> None:
        if self.on_turn is None:
            return
        try:
            self.on_turn(stats)
        except Exception:  # metrics never break a turn
            log.exception("on_turn observer failed")

    async def _write_turn(self, session: AsyncSession, turn: Turn, message: Any,
                          group: AnswerGroup | None = None) -> None:
        conversation = turn.conversation
        if (group is not None and turn.escalation is None and not turn.alerts
                and group.accepts(session, conversation, message)):
            group.add(conversation, message, replies=turn.replies, bot_state=turn.state.to_json(),
                      language=turn.lang, intent=turn.intent)
            return  # written with the batch's other answers before its commit
        await message_answer(session, conversation, message, replies=turn.replies, bot_state=turn.state.to_json(),
                       language=turn.lang, intent=turn.intent)
        if turn.escalation is not None:
            await conversation_escalate(session, conversation, priority=turn.escalation.priority,
                                 summary=turn.escalation.summary, reason=turn.escalation.reason,
                                 context=turn.escalation.context)
        for alert in turn.alerts:
            self.bus.collect(session, Event("alert", conversation.id, alert))
        # message_answer marked the message processed: the caller's commit stores it with the rest

    async def _fail_safe(self, message_id: int) -> None:
        """The handler failed: apologise, hand over to a person, and never process it again."""
        try:
            async with self.sessions() as session:
                message = await session.get(Message, message_id)
                if message is None or message.processed:
                    return
                conversation = await session.get(Conversation, message.conversation_id)
                assert conversation is not None
                lang = conversation.language
                if conversation.owner != Owner.agent:
                    message_send(session, conversation, OutboundPayload(text=render_reply("bot_error", lang)),
                                       author=Author.bot)
                    await conversation_escalate(session, conversation, priority=Priority.high,
                                         summary="reason: bot_error; the bot failed on the last message", reason="bot_error",
                                         context={"reason": "bot_error", "said": ["bot_error"]})
                await message_mark_processed(session, message_id)
                await session.commit()
            self._observe(TurnStats(intent=message.intent or "unknown", understanding_seconds=None,
                                    handler_seconds=0.0, outcome="failed", escalation_reason="bot_error"))
        except Exception:
            log.exception("fail-safe for a bot turn failed; the message stays unprocessed for the next sweep",
                          extra={"message_id": message_id})

    async def on_order_change(self, event: str, order_id: int) -> None:
        """Called after a Shopify webhook committed: tell subscribers (Slack alerts, agents' sidebars)."""
        await self.bus.publish(Event("order.changed", None, {"event": event, "order_id": order_id}))

    async def run_periodic(self) -> None:
        """Housekeeping every minute: wake snoozed conversations (in the one process that runs
        the periodic jobs, ``should_run_periodic``)."""
        while True:
            if not self.should_run_periodic():
                await asyncio.sleep(self.periodic_interval)
                continue
            try:
                async with self.sessions() as session:
                    await conversation_wake_snoozed(session, datetime.now(UTC))
                    await session.commit()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("periodic housekeeping failed")
            await asyncio.sleep(self.periodic_interval)


def _postback(message: Any) -> str | None:
    if message.postback:
        return message.postback
    if message.start_payload and not (message.text or "").strip():
        return "intent:greeting"  # a /start deep link opens the conversation with the menu
    return None


_SOCIAL = frozenset({"greeting", "thanks", "goodbye", "unknown"})


def _intent(nlu: Any) -> tuple[str, float]:
    """The classifier's intent, except that "hi, I want to return my shoes" is about the return:
    a greeting or thanks in a longer message yields to the runner-up request when it is plausible."""
    if nlu is None:
        return "unknown", 0.0
    if nlu.intent in {"greeting", "thanks"} and len(nlu.text.split()) >= 3 and len(nlu.ranking) > 1:
        second, confidence = nlu.ranking[1]
        if second not in _SOCIAL and confidence >= CLARIFY_BELOW:
            return str(second), float(confidence)
    return str(nlu.intent), float(nlu.confidence)


#: languages the detector may guess for Latin-script text that means nothing to it
_LATIN_GUESSES = frozenset({"en", "es"})


def _language(nlu: Any, conversation: Conversation, contact: Contact) -> str:
    """The reply language: detected from the text, but a short answer ("Madrid", "10115")
    or a message the bot did not understand keeps the language the conversation (or the
    customer's browser or app) is already in."""
    known = conversation.language or contact.language
    if nlu is None:
        return known or "en"
    if known and len(nlu.text.split()) < 3 and not any("\u4e00" <= ch <= "\u9fff" for ch in nlu.text):
        return known
    if known and nlu.intent == "unknown" and nlu.language in _LATIN_GUESSES:
        return known  # not understood ("asdkjh qwe zzz"): an en/es guess is no better than what we know
    return str(nlu.language)



async def unprocessed(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
    async with sessions() as session:
        rows = await session.exec(select(Message.id).where(col(Message.processed).is_(False)))
        return [int(r) for r in rows.all() if r is not None]
