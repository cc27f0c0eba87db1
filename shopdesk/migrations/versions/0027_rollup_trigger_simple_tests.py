"""PostgreSQL: the analytics rollup's row trigger runs no query for what a plain test decides.

Measured with ``python -m tests.bench.pgcost`` (pg_stat_statements, nested statements), 0026's
trigger still ran four queries per bot turn that changed an intent: the local day (a sub-select of
``analytics_tz_offset``), the pending insert, and the two "could count as automated" tests, one per
side. Those tests were one expression with the escalation sub-select in it, so plpgsql ran each as
a query (executor start and end) even when its first term (``resolved_at IS NOT NULL``) was false,
as it is for every open conversation. Now the column tests are a plain expression (evaluated
without the executor) and the sub-select runs only for a conversation that passes them; and the
local day is read only when something counted moved (a turn that keeps the intent, channel,
automated flag and durations reads nothing and writes nothing). Counts written: the same as 0026's
(``tests/test_analytics_rollup.py`` compares the rollup with a rebuild after random changes).
The deferred fold (0025) moves both pending tables in ONE query instead of three.
SQLite keeps its triggers.

Revision ID: 0027
Revises: 0026
"""

from collections.abc import Sequence
from typing import Union

from alembic import op

revision: str = "0027"
down_revision: Union[str, None] = "0026"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ESCALATED = "conversation.escalated"


def _day(ts: str) -> str:
    """``shopdesk_local_day(ts)`` written out (as in 0026)."""
    return (f"CAST(FLOOR((date_part('epoch', {ts}) + coalesce((SELECT o.offset_seconds FROM analytics_tz_offset o "
            f"WHERE o.since_epoch <= date_part('epoch', {ts}) ORDER BY o.since_epoch DESC LIMIT 1), 0)) / 86400.0) "
            "AS INTEGER)")


def _side(row: str, p: str) -> str:
    """Read ``row`` (OLD or NEW) into ``{p}c``, ``{p}i``, ``{p}a`` (automated, 0/1), ``{p}_f`` and
    ``{p}_r`` (seconds to first response / resolution, or NULL); the day is read later."""
    return f"""
        {p}c := {row}.channel;
        {p}i := coalesce({row}.last_intent, 'unknown');
        IF {row}.resolved_at IS NOT NULL AND {row}.first_response_at IS NULL AND {row}.assignee_id IS NULL THEN
            IF NOT EXISTS (SELECT 1 FROM audit_event a WHERE a.conversation_id = {row}.id
                           AND a.action = '{ESCALATED}') THEN
                {p}a := 1;
            END IF;
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
    IF TG_OP <> 'INSERT' THEN{_side("OLD", "o")}
    END IF;
    IF TG_OP <> 'DELETE' THEN{_side("NEW", "n")}
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.created_at IS NOT DISTINCT FROM NEW.created_at AND oc = nc AND oi = ni
       AND oa = na AND o_f IS NOT DISTINCT FROM n_f AND o_r IS NOT DISTINCT FROM n_r THEN
        RETURN NULL;  -- nothing counted moved
    END IF;
    IF TG_OP <> 'INSERT' THEN
        od := {_day("OLD.created_at")};
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF TG_OP = 'UPDATE' AND OLD.created_at IS NOT DISTINCT FROM NEW.created_at THEN
            nd := od;
        ELSE
            nd := {_day("NEW.created_at")};
        END IF;
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


#: 0025's fold (the same sums, in the same key order) as ONE statement: both pending tables moved
#: by data-modifying CTEs of one INSERT (every run of it has the same plan, so the same order of
#: locks), and the transaction's mark set by an assignment (a plain expression, no query): three
#: queries per commit of a micro-batch become one
FOLD_FUNCTION = """CREATE OR REPLACE FUNCTION shopdesk_rollup_fold() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        mark text;
    BEGIN
        IF current_setting('shopdesk.rollup_folded', true) = 'on' THEN
            RETURN NULL;
        END IF;
        mark := set_config('shopdesk.rollup_folded', 'on', true);
        WITH moved AS (DELETE FROM conversation_daily_pending RETURNING *),
        counted AS (
            INSERT INTO conversation_daily (day, channel, intent, conversations, automated)
            SELECT day, channel, intent, sum(conversations), sum(automated) FROM moved
            GROUP BY day, channel, intent ORDER BY day, channel, intent
            ON CONFLICT (day, channel, intent) DO UPDATE
            SET conversations = conversation_daily.conversations + EXCLUDED.conversations,
                automated = conversation_daily.automated + EXCLUDED.automated
        ),
        moved_times AS (DELETE FROM response_daily_pending RETURNING *)
        INSERT INTO response_daily (day, channel, measure, seconds, conversations)
        SELECT day, channel, measure, seconds, sum(conversations) FROM moved_times
        GROUP BY day, channel, measure, seconds ORDER BY measure, day, channel, seconds
        ON CONFLICT (day, channel, measure, seconds) DO UPDATE
        SET conversations = response_daily.conversations + EXCLUDED.conversations;
        RETURN NULL;
    END $$"""


def _previous() -> tuple[str, str]:
    """0026's row function and 0025's fold (what the downgrade puts back)."""
    import importlib

    row = importlib.import_module("shopdesk.migrations.versions.0026_rollup_trigger_plpgsql").TRIGGER_FUNCTION
    fold = next(s for s in importlib.import_module("shopdesk.migrations.versions.0025_rollup_fold_at_commit").UPGRADE
                if "FUNCTION shopdesk_rollup_fold()" in s)
    return str(row), str(fold).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(TRIGGER_FUNCTION)
    op.execute(FOLD_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in _previous():
        op.execute(statement)
