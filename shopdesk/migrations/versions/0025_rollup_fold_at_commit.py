"""PostgreSQL: the analytics rollup's counts are added at commit, in key order.

Every bot turn that changes a conversation's intent moves a count between two rows of
``conversation_daily`` (the day's count per channel and intent): a handful of rows that every
conversation shares. Updated from the conversation's row trigger, they stayed locked from the
turn's UPDATE until its commit, so with several server processes (and a micro-batch of turns in
one transaction) the transactions queued behind each other on those few rows — sampled, most of
the busy connections waited for them ("Lock:transactionid" on ``UPDATE conversation``).

Now the triggers append their changes to ``conversation_daily_pending`` / ``response_daily_pending``
(plain inserts: no shared row is touched) and a deferred constraint trigger folds them into the
rollup at commit: summed per key and written in key order, so the shared rows are locked only for
the moment of the commit and two transactions always take them in the same order (no deadlock).
What a committed transaction leaves in the rollup is exactly what the row triggers wrote before.
The first fold of a transaction marks it (a transaction-local setting); the later firings of the
same commit return at once (so nothing may fire the deferred triggers early, e.g. ``SET
CONSTRAINTS ALL IMMEDIATE``, and then change conversations in the same transaction: nothing in
Shopdesk does). SQLite (one process, one writer) keeps its triggers.

Revision ID: 0025
Revises: 0024
"""

from collections.abc import Sequence
from typing import Union

from alembic import op

revision: str = "0025"
down_revision: Union[str, None] = "0024"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ESCALATED = "conversation.escalated"

_ADD = """CREATE OR REPLACE FUNCTION shopdesk_conversation_daily_add(c conversation, sign integer) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO {daily} (day, channel, intent, conversations, automated)
    VALUES (shopdesk_local_day(c.created_at), c.channel, coalesce(c.last_intent, 'unknown'), sign,
            CASE WHEN c.resolved_at IS NOT NULL AND c.first_response_at IS NULL AND c.assignee_id IS NULL
                 AND NOT EXISTS (SELECT 1 FROM audit_event a WHERE a.conversation_id = c.id
                                 AND a.action = '{escalated}') THEN sign ELSE 0 END){daily_conflict};
    INSERT INTO {response} (day, channel, measure, seconds, conversations)
    SELECT shopdesk_local_day(c.created_at), c.channel, 'first_response',
           CAST(round(date_part('epoch', c.first_response_at) - date_part('epoch', c.created_at)) AS INTEGER), sign
    WHERE c.first_response_at IS NOT NULL{response_conflict};
    INSERT INTO {response} (day, channel, measure, seconds, conversations)
    SELECT shopdesk_local_day(c.created_at), c.channel, 'resolution',
           CAST(round(date_part('epoch', c.resolved_at) - date_part('epoch', c.created_at)) AS INTEGER), sign
    WHERE c.resolved_at IS NOT NULL{response_conflict}
$$"""

_DAILY_CONFLICT = """
    ON CONFLICT (day, channel, intent) DO UPDATE
    SET conversations = conversation_daily.conversations + EXCLUDED.conversations,
        automated = conversation_daily.automated + EXCLUDED.automated"""
_RESPONSE_CONFLICT = """
    ON CONFLICT (day, channel, measure, seconds) DO UPDATE
    SET conversations = response_daily.conversations + EXCLUDED.conversations"""

_ESCALATION = """CREATE OR REPLACE FUNCTION shopdesk_conversation_daily_escalation() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cid integer;
    step integer;
    remaining integer;
BEGIN
    IF TG_OP = 'INSERT' THEN cid := NEW.conversation_id; step := -1;
    ELSE cid := OLD.conversation_id; step := 1;
    END IF;
    SELECT count(*) INTO remaining FROM audit_event a WHERE a.conversation_id = cid AND a.action = '{escalated}';
    -- only the first escalation (or the removal of the last one) changes the automated count
    IF (TG_OP = 'INSERT' AND remaining <> 1) OR (TG_OP = 'DELETE' AND remaining <> 0) THEN
        RETURN NULL;
    END IF;
    {body};
    RETURN NULL;
END $$"""

_ESCALATION_BEFORE = """UPDATE conversation_daily d SET automated = d.automated + step
    FROM conversation c
    WHERE c.id = cid AND c.resolved_at IS NOT NULL AND c.first_response_at IS NULL AND c.assignee_id IS NULL
      AND d.day = shopdesk_local_day(c.created_at) AND d.channel = c.channel
      AND d.intent = coalesce(c.last_intent, 'unknown')"""
_ESCALATION_PENDING = """INSERT INTO conversation_daily_pending (day, channel, intent, conversations, automated)
    SELECT shopdesk_local_day(c.created_at), c.channel, coalesce(c.last_intent, 'unknown'), 0, step
    FROM conversation c
    WHERE c.id = cid AND c.resolved_at IS NOT NULL AND c.first_response_at IS NULL AND c.assignee_id IS NULL"""

UPGRADE = (
    "CREATE TABLE conversation_daily_pending (day integer NOT NULL, channel varchar NOT NULL, "
    "intent varchar NOT NULL, conversations integer NOT NULL, automated integer NOT NULL)",
    "CREATE TABLE response_daily_pending (day integer NOT NULL, channel varchar NOT NULL, "
    "measure varchar NOT NULL, seconds integer NOT NULL, conversations integer NOT NULL)",
    _ADD.format(daily="conversation_daily_pending", response="response_daily_pending", escalated=ESCALATED,
                daily_conflict="", response_conflict=""),
    _ESCALATION.format(escalated=ESCALATED, body=_ESCALATION_PENDING),
    # every change of a transaction reaches conversation_daily_pending (the response rows go with
    # a conversation row): its deferred trigger folds both tables once, at commit
    """CREATE FUNCTION shopdesk_rollup_fold() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF current_setting('shopdesk.rollup_folded', true) = 'on' THEN
            RETURN NULL;
        END IF;
        PERFORM set_config('shopdesk.rollup_folded', 'on', true);
        WITH moved AS (DELETE FROM conversation_daily_pending RETURNING *)
        INSERT INTO conversation_daily (day, channel, intent, conversations, automated)
        SELECT day, channel, intent, sum(conversations), sum(automated) FROM moved
        GROUP BY day, channel, intent ORDER BY day, channel, intent
        ON CONFLICT (day, channel, intent) DO UPDATE
        SET conversations = conversation_daily.conversations + EXCLUDED.conversations,
            automated = conversation_daily.automated + EXCLUDED.automated;
        WITH moved AS (DELETE FROM response_daily_pending RETURNING *)
        INSERT INTO response_daily (day, channel, measure, seconds, conversations)
        SELECT day, channel, measure, seconds, sum(conversations) FROM moved
        GROUP BY day, channel, measure, seconds ORDER BY measure, day, channel, seconds
        ON CONFLICT (day, channel, measure, seconds) DO UPDATE
        SET conversations = response_daily.conversations + EXCLUDED.conversations;
        RETURN NULL;
    END $$""",
    "CREATE CONSTRAINT TRIGGER conversation_daily_fold AFTER INSERT ON conversation_daily_pending "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION shopdesk_rollup_fold()",
)

DOWNGRADE = (
    "DROP TRIGGER IF EXISTS conversation_daily_fold ON conversation_daily_pending",
    "DROP FUNCTION IF EXISTS shopdesk_rollup_fold()",
    _ADD.format(daily="conversation_daily", response="response_daily", escalated=ESCALATED,
                daily_conflict=_DAILY_CONFLICT, response_conflict=_RESPONSE_CONFLICT),
    _ESCALATION.format(escalated=ESCALATED, body=_ESCALATION_BEFORE),
    "DROP TABLE IF EXISTS response_daily_pending",
    "DROP TABLE IF EXISTS conversation_daily_pending",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in DOWNGRADE:
        op.execute(statement)
