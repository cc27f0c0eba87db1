"""``OutboundPayload.to_json`` writes a quick reply's fields by hand (the reply's hot path): it
must store every field of ``QuickReply`` as ``asdict`` would, and read back the same payload."""

from __future__ import annotations

from dataclasses import asdict

from inbox.messages import Attachment, OutboundPayload, QuickReply


def test_quick_replies_are_stored_with_every_field_and_read_back() -> None:
    payload = OutboundPayload("Pick one", quick_replies=(QuickReply("Track", "intent:track"), QuickReply("Return", "r")),
                              attachments=(Attachment(kind="file", filename="a.pdf", url="https://x.test/a.pdf"),),
                              author="bot")
    stored = payload.to_json()
    assert stored["quick_replies"] == [asdict(q) for q in payload.quick_replies]
    assert OutboundPayload.from_json(stored) == payload
