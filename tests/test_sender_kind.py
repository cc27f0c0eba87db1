"""inbox.channels.is_sender / is_notice_sender: isinstance of the protocols, remembered per sender
object (the outbox asks once per message sent), and the outbox's answers with them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from inbox import channels
from inbox.channels import Notice, NoticeSender, Sender, SenderRegistry, is_notice_sender, is_sender
from inbox.messages import OutboundPayload, QuickReply
from inbox.models import Channel, OutboxStatus
from inbox.outbox import OutboxDispatcher
from shopdesk.metrics import _CountingSender
from tests.test_outbox import FakeSender, conversation_with, outbox_rows


class NoticeOnly:
    def __init__(self, channel: Channel = Channel.telegram) -> None:
        self.channel = channel
        self.notices: list[int] = []

    async def send_notice(self, notice: Notice) -> str | None:
        self.notices.append(notice.id)
        return None


class Nothing:
    channel = Channel.telegram


def test_answers_as_isinstance():
    for obj in (FakeSender(), NoticeOnly(), Nothing(), object(), _CountingSender(FakeSender(), metrics=None),
                _CountingSender(NoticeOnly(), metrics=None)):
        for _ in range(2):  # asked again: the remembered answer
            assert is_sender(obj) is isinstance(obj, Sender)
            assert is_notice_sender(obj) is isinstance(obj, NoticeSender)
    assert is_sender(FakeSender()) and not is_sender(NoticeOnly()) and not is_sender(Nothing())
    assert is_notice_sender(NoticeOnly()) and not is_notice_sender(FakeSender())
    # the metrics wrapper forwards the inner sender's other methods, so it is what the inner one is
    assert is_notice_sender(_CountingSender(NoticeOnly(), metrics=None))
    assert not is_notice_sender(_CountingSender(FakeSender(), metrics=None))


def test_a_stale_answer_for_another_object_of_the_same_id_is_not_used():
    obj = Nothing()
    # what a dead sender at the same address would have left behind
    channels._KINDS[(id(obj), Sender)] = (object(), True)
    assert not is_sender(obj)
    assert channels._KINDS[(id(obj), Sender)] == (obj, False)


def test_the_memory_stays_bounded():
    kept = [FakeSender() for _ in range(600)]
    for obj in kept:
        assert is_sender(obj)
    assert len(channels._KINDS) <= 64


async def test_outbox_gives_up_a_customer_message_whose_sender_takes_notices_only(sessions, bus):
    notices = NoticeOnly()
    registry = SenderRegistry()
    registry.register(notices)  # type: ignore[arg-type]
    await conversation_with(sessions, "c1", "hello")
    dispatcher = OutboxDispatcher(sessions, registry, bus)
    assert await dispatcher.run_once() == 1
    rows = await outbox_rows(sessions)
    assert [(r.status, r.last_error) for r in rows] == [
        (OutboxStatus.undeliverable, "the channel's sender takes notices only")]
    assert notices.notices == []


class PayloadSender(FakeSender):
    def __init__(self) -> None:
        super().__init__()
        self.payloads: list[OutboundPayload] = []

    async def send(self, contact: Any, payload: OutboundPayload) -> str | None:
        self.payloads.append(payload)
        return await super().send(contact, payload)


async def test_outbox_sends_through_a_sender_asked_twice(sessions, bus):
    sender = PayloadSender()
    registry = SenderRegistry()
    registry.register(_CountingSender(sender, metrics=_Metrics()))  # type: ignore[arg-type]
    await conversation_with(sessions, "c1", "one", "two")
    dispatcher = OutboxDispatcher(sessions, registry, bus)
    assert await dispatcher.run_once() == 2
    assert sender.texts == ["one", "two"]
    rows = await outbox_rows(sessions)
    assert [r.status for r in rows] == [OutboxStatus.sent] * 2
    # the payload a sender gets names the Message it delivers (the widget's frame uses it)
    assert [p.message_id for p in sender.payloads] == [r.message_id for r in rows]
    assert all(p.message_id is not None for p in sender.payloads)


def test_payload_from_json_with_its_message_id():
    stored = OutboundPayload("hi", quick_replies=(QuickReply("Yes", "yes"),), author="bot").to_json()
    assert OutboundPayload.from_json(stored, message_id=7) == replace(OutboundPayload.from_json(stored), message_id=7)
    assert OutboundPayload.from_json(stored).message_id is None


class _Metrics:
    """What _CountingSender touches of shopdesk.metrics.Metrics."""

    outbound = None

    def _child(self, *_: Any) -> Any:
        return self

    def inc(self) -> None:
        pass
