"""PostgreSQL: the analytics rollup's row trigger on ``conversation`` does its work in one plpgsql body.

Measured with ``python -m tests.bench.pgcost`` (pg_stat_statements), the trigger was most of
PostgreSQL's time per answered message: every bot turn changes the conversation's intent, and the
trigger called the SQL-language ``shopdesk_conversation_daily_add`` twice (old row, new row), each
running three INSERTs that called the SQL-language ``shopdesk_local_day`` (a sub-select, so never
inlined): SQL functions are planned again at every call, ten small plans per turn. The rewrite
keeps the same counts with plans plpgsql caches per connection: the local day is read once per
row (twice only when ``created_at`` changed), the old and new count go in ONE insert into
``conversation_daily_pending`` (one row when only the automated flag moved, none when nothing
counted moved), the response-time rows only when a duration or its key moved (a change of intent
leaves them alone), and the escalation sub-select only runs for a conversation that could count
as automated. What reaches ``conversation_daily`` / ``response_daily`` at commit is the same sum
per key as before (0025's fold, unchanged). Since a turn may now add response rows without a
daily row, ``response_daily_pending`` gets the same deferred fold trigger
(``shopdesk_rollup_fold`` runs once per transaction whichever fires first). SQLite keeps its
triggers.

Revision ID: 0026
Revises: 0025
"""

from collections.abc import Sequence
from typing import Union

from alembic import op

revision: str = "0026"
down_revision: Union[str, None] = "0025"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ESCALATED = "conversation.escalated"


def _day(ts: str) -> str:
    """``shopdesk_local_day(ts)`` written out (a plpgsql expression: its plan is cached)."""
    return (f"CAST(FLOOR((date_part('epoch', {ts}) + coalesce((SELECT o.offset_seconds FROM analytics_tz_offset o "
            f"WHERE o.since_epoch <= date_part('epoch', {ts}) ORDER BY o.since_epoch DESC LIMIT 1), 0)) / 86400.0) "
            "AS INTEGER)")


def _side(row: str, p: str) -> str:
    """Read ``row`` (OLD or NEW) into the variables ``{p}d`` (day), ``{p}c``, ``{p}i``, ``{p}a``
    (automated, 0/1), ``{p}_f`` and ``{p}_r`` (seconds to first response / resolution, or NULL)."""
    return f"""
        {p}c := {row}.channel;
        {p}i := coalesce({row}.last_intent, 'unknown');
        IF {row}.resolved_at IS NOT NULL AND {row}.first_response_at IS NULL AND {row}.assignee_id IS NULL
           AND NOT EXISTS (SELECT 1 FROM audit_event a WHERE a.conversation_id = {row}.id
                           AND a.action = '{ESCALATED}') THEN
            {p}a := 1;
        END IF;
        IF {row}.first_response_at IS NOT NULL THEN
            {p}_f := CAST(round(date_part('epoch', {row}.first_response_at) - date_part('epoch', {row}.created_at))
                         AS INTEGER);
        END IF;
        IF {row}.resolved_at IS NOT NULL THEN
            {p}_r := CAST(round(date_part('epoch', {row}.resolved_at) - date_part('epoch', {row}.created_at))
                         AS INTEGER);
        END IF;"""


TRIGGER_FUNCTION = f"""CREATE OR REPLACE FUNCTION shopdesk_conversation_daily() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    od integer; oc varchar; oi varchar; oa integer := 0; o_f integer; o_r integer;
    nd integer; nc varchar; ni varchar; na integer := 0; n_f integer; n_r integer;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        od := {_day("OLD.created_at")};{_side("OLD", "o")}
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF TG_OP = 'UPDATE' AND OLD.created_at IS NOT DISTINCT FROM NEW.created_at THEN
            nd := od;
        ELSE
            nd := {_day("NEW.created_at")};
        END IF;{_side("NEW", "n")}
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO conversation_daily_pending (day, channel, intent, conversations, automated)
        VALUES (nd, nc, ni, 1, na);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO conversation_daily_pending (day, channel, intent, conversations, automated)
        VALUES (od, oc, oi, -1, -oa);
    ELSIF od = nd AND oc = nc AND oi = ni THEN
        IF oa <> na THEN
            INSERT INTO conversation_daily_pending (day, channel, intent, conversations, automated)
            VALUES (nd, nc, ni, 0, na - oa);
        END IF;
    ELSE
        INSERT INTO conversation_daily_pending (day, channel, intent, conversations, automated)
        VALUES (od, oc, oi, -1, -oa), (nd, nc, ni, 1, na);
    END IF;
    -- a response-time entry moves only when its duration or its day or channel did
    IF TG_OP = 'UPDATE' AND od = nd AND oc = nc THEN
        IF o_f IS NOT DISTINCT FROM n_f THEN o_f := NULL; n_f := NULL; END IF;
        IF o_r IS NOT DISTINCT FROM n_r THEN o_r := NULL; n_r := NULL; END IF;
    END IF;
    IF o_f IS NOT NULL OR n_f IS NOT NULL OR o_r IS NOT NULL OR n_r IS NOT NULL THEN
        INSERT INTO response_daily_pending (day, channel, measure, seconds, conversations)
        SELECT v.day, v.channel, v.measure, v.seconds, v.n
        FROM (VALUES (od, oc, 'first_response', o_f, -1), (nd, nc, 'first_response', n_f, 1),
                     (od, oc, 'resolution', o_r, -1), (nd, nc, 'resolution', n_r, 1))
             AS v(day, channel, measure, seconds, n)
        WHERE v.seconds IS NOT NULL;
    END IF;
    RETURN NULL;
END $$"""

# 0020's function (it calls 0025's ``shopdesk_conversation_daily_add`` for the old and the new row)
PREVIOUS_FUNCTION = """CREATE OR REPLACE FUNCTION shopdesk_conversation_daily() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            PERFORM shopdesk_conversation_daily_add(OLD, -1);
        ELSIF TG_OP = 'INSERT' THEN
            PERFORM shopdesk_conversation_daily_add(NEW, 1);
        ELSIF (shopdesk_local_day(OLD.created_at), OLD.channel, coalesce(OLD.last_intent, 'unknown'))
              <= (shopdesk_local_day(NEW.created_at), NEW.channel, coalesce(NEW.last_intent, 'unknown')) THEN
            PERFORM shopdesk_conversation_daily_add(OLD, -1);
            PERFORM shopdesk_conversation_daily_add(NEW, 1);
        ELSE
            PERFORM shopdesk_conversation_daily_add(NEW, 1);
            PERFORM shopdesk_conversation_daily_add(OLD, -1);
        END IF;
        RETURN NULL;
    END $$"""

UPGRADE = (
    TRIGGER_FUNCTION,
    "CREATE CONSTRAINT TRIGGER response_daily_fold AFTER INSERT ON response_daily_pending "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION shopdesk_rollup_fold()",
)

DOWNGRADE = (
    "DROP TRIGGER IF EXISTS response_daily_fold ON response_daily_pending",
    PREVIOUS_FUNCTION,
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
