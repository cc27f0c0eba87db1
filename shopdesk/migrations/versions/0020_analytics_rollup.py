"""Analytics: conversations per local day × channel × intent (opened, and resolved by the bot alone),
maintained on write by triggers, with a backfill.

``conversation_daily`` holds, per (shop-local day number, channel, intent), how many
conversations were opened and how many of them count as automated (resolved, no agent reply,
never assigned, never escalated: ``inbox.analytics.metrics``). Triggers keep it in the same
transaction as every write that changes it, whoever writes (the actions' ORM and Core statements,
bulk imports): a conversation inserted, deleted, or updated in ``created_at``, ``channel``,
``last_intent``, ``resolved_at``, ``first_response_at`` or ``assignee_id`` moves its count from
its old key to its new one; the first ``conversation.escalated`` audit row of a conversation
takes it out of the automated count (and deleting the last one puts it back).

``response_daily`` is the exact histogram behind the response-time percentiles: per (day, channel,
measure, whole seconds) how many conversations opened that day took that long to their first
agent reply (``first_response``) or to resolution (``resolution``); the same triggers move a
conversation's entries when its times change. Percentiles read the distinct durations of a period
instead of every conversation, and stay exact (nearest rank).

The shop-local day is found with ``analytics_tz_offset`` (the UTC offsets of the shop's time
zone and when each starts, as epoch seconds), the same arithmetic as ``shopbase.sqltime.local_day``.
``analytics_rollup_state`` names the zone the table was built for; when ``SHOPDESK_SHOP_TIMEZONE``
changes, the app rebuilds it at start (``inbox.actions.analytics_rebuild``; ``shopdesk analytics
rebuild`` by hand) and the report reads the conversations themselves until then.

Revision ID: 0020
Revises: 0019
"""

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: Union[str, None] = "0019"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ESCALATED = "conversation.escalated"

# -- SQLite: no functions, so the day and the automated test are written out in each trigger --------

_SQLITE_EPOCH = "((julianday({ts}) - 2440587.5) * 86400.0)"


def _sqlite_day(ts: str) -> str:
    epoch = _SQLITE_EPOCH.format(ts=ts)
    shift = (f"(SELECT o.offset_seconds FROM analytics_tz_offset o WHERE o.since_epoch <= {epoch} "
             "ORDER BY o.since_epoch DESC LIMIT 1)")
    return f"CAST((({epoch} + coalesce({shift}, 0)) / 86400.0) AS INTEGER)"


def _sqlite_automated(row: str) -> str:
    return (f"CASE WHEN {row}.resolved_at IS NOT NULL AND {row}.first_response_at IS NULL "
            f"AND {row}.assignee_id IS NULL AND NOT EXISTS (SELECT 1 FROM audit_event a "
            f"WHERE a.conversation_id = {row}.id AND a.action = '{ESCALATED}') THEN 1 ELSE 0 END")


def _sqlite_add(row: str, sign: int) -> str:
    return (
        "INSERT INTO conversation_daily (day, channel, intent, conversations, automated) "
        f"VALUES ({_sqlite_day(row + '.created_at')}, {row}.channel, coalesce({row}.last_intent, 'unknown'), "
        f"{sign}, {sign} * ({_sqlite_automated(row)})) "
        "ON CONFLICT (day, channel, intent) DO UPDATE SET conversations = conversations + excluded.conversations, "
        "automated = automated + excluded.automated;"
    )


def _sqlite_seconds(start: str, end: str) -> str:
    return f"CAST(round({_SQLITE_EPOCH.format(ts=end)} - {_SQLITE_EPOCH.format(ts=start)}) AS INTEGER)"


def _sqlite_response(row: str, sign: int) -> str:
    return " ".join(
        "INSERT INTO response_daily (day, channel, measure, seconds, conversations) "
        f"SELECT {_sqlite_day(row + '.created_at')}, {row}.channel, '{measure}', "
        f"{_sqlite_seconds(row + '.created_at', row + '.' + end)}, {sign} WHERE {row}.{end} IS NOT NULL "
        "ON CONFLICT (day, channel, measure, seconds) DO UPDATE SET "
        "conversations = conversations + excluded.conversations;"
        for measure, end in (("first_response", "first_response_at"), ("resolution", "resolved_at")))


def _sqlite_escalation(conversation_id: str, sign: int) -> str:
    return (
        f"UPDATE conversation_daily SET automated = automated + ({sign}) "
        "WHERE (day, channel, intent) IN (SELECT "
        f"{_sqlite_day('c.created_at')}, c.channel, coalesce(c.last_intent, 'unknown') FROM conversation c "
        f"WHERE c.id = {conversation_id} AND c.resolved_at IS NOT NULL AND c.first_response_at IS NULL "
        "AND c.assignee_id IS NULL);"
    )


_WATCHED = ("created_at", "channel", "last_intent", "resolved_at", "first_response_at", "assignee_id")

SQLITE_TRIGGERS = (
    "CREATE TRIGGER conversation_daily_insert AFTER INSERT ON conversation BEGIN "
    + _sqlite_add("NEW", 1) + " " + _sqlite_response("NEW", 1) + " END",
    f"CREATE TRIGGER conversation_daily_update AFTER UPDATE OF {', '.join(_WATCHED)} ON conversation WHEN "
    + " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _WATCHED) + " BEGIN "
    + _sqlite_add("OLD", -1) + " " + _sqlite_add("NEW", 1) + " "
    + _sqlite_response("OLD", -1) + " " + _sqlite_response("NEW", 1) + " END",
    "CREATE TRIGGER conversation_daily_delete AFTER DELETE ON conversation BEGIN "
    + _sqlite_add("OLD", -1) + " " + _sqlite_response("OLD", -1) + " END",
    # the first escalation of a conversation takes it out of the automated count
    f"CREATE TRIGGER conversation_daily_escalated AFTER INSERT ON audit_event WHEN NEW.action = '{ESCALATED}' "
    "AND NEW.conversation_id IS NOT NULL AND (SELECT count(*) FROM audit_event a WHERE "
    f"a.conversation_id = NEW.conversation_id AND a.action = '{ESCALATED}') = 1 BEGIN "
    + _sqlite_escalation("NEW.conversation_id", -1) + " END",
    # ... and removing the last one puts it back
    f"CREATE TRIGGER conversation_daily_unescalated AFTER DELETE ON audit_event WHEN OLD.action = '{ESCALATED}' "
    "AND OLD.conversation_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM audit_event a WHERE "
    f"a.conversation_id = OLD.conversation_id AND a.action = '{ESCALATED}') BEGIN "
    + _sqlite_escalation("OLD.conversation_id", 1) + " END",
)
SQLITE_TRIGGER_NAMES = ("conversation_daily_insert", "conversation_daily_update", "conversation_daily_delete",
                        "conversation_daily_escalated", "conversation_daily_unescalated")

# -- PostgreSQL: two functions shared by the triggers ------------------------------------------------

POSTGRES_DDL = (
    """CREATE FUNCTION shopdesk_local_day(ts timestamptz) RETURNS integer LANGUAGE sql STABLE AS $$
        SELECT CAST(FLOOR((date_part('epoch', ts) + coalesce((SELECT o.offset_seconds FROM analytics_tz_offset o
            WHERE o.since_epoch <= date_part('epoch', ts) ORDER BY o.since_epoch DESC LIMIT 1), 0)) / 86400.0) AS INTEGER)
    $$""",
    f"""CREATE FUNCTION shopdesk_conversation_daily_add(c conversation, sign integer) RETURNS void LANGUAGE sql AS $$
        INSERT INTO conversation_daily (day, channel, intent, conversations, automated)
        VALUES (shopdesk_local_day(c.created_at), c.channel, coalesce(c.last_intent, 'unknown'), sign,
                CASE WHEN c.resolved_at IS NOT NULL AND c.first_response_at IS NULL AND c.assignee_id IS NULL
                     AND NOT EXISTS (SELECT 1 FROM audit_event a WHERE a.conversation_id = c.id
                                     AND a.action = '{ESCALATED}') THEN sign ELSE 0 END)
        ON CONFLICT (day, channel, intent) DO UPDATE
        SET conversations = conversation_daily.conversations + EXCLUDED.conversations,
            automated = conversation_daily.automated + EXCLUDED.automated;
        INSERT INTO response_daily (day, channel, measure, seconds, conversations)
        SELECT shopdesk_local_day(c.created_at), c.channel, 'first_response',
               CAST(round(date_part('epoch', c.first_response_at) - date_part('epoch', c.created_at)) AS INTEGER), sign
        WHERE c.first_response_at IS NOT NULL
        ON CONFLICT (day, channel, measure, seconds) DO UPDATE
        SET conversations = response_daily.conversations + EXCLUDED.conversations;
        INSERT INTO response_daily (day, channel, measure, seconds, conversations)
        SELECT shopdesk_local_day(c.created_at), c.channel, 'resolution',
               CAST(round(date_part('epoch', c.resolved_at) - date_part('epoch', c.created_at)) AS INTEGER), sign
        WHERE c.resolved_at IS NOT NULL
        ON CONFLICT (day, channel, measure, seconds) DO UPDATE
        SET conversations = response_daily.conversations + EXCLUDED.conversations
    $$""",
    # an update moves a count between two keys: always in key order, so that two transactions
    # moving counts in opposite directions (intent a -> b and b -> a) never wait for each other
    """CREATE FUNCTION shopdesk_conversation_daily() RETURNS trigger LANGUAGE plpgsql AS $$
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
    END $$""",
    f"""CREATE FUNCTION shopdesk_conversation_daily_escalation() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        cid integer;
        step integer;
        remaining integer;
    BEGIN
        IF TG_OP = 'INSERT' THEN cid := NEW.conversation_id; step := -1;
        ELSE cid := OLD.conversation_id; step := 1;
        END IF;
        SELECT count(*) INTO remaining FROM audit_event a WHERE a.conversation_id = cid AND a.action = '{ESCALATED}';
        -- only the first escalation (or the removal of the last one) changes the automated count
        IF (TG_OP = 'INSERT' AND remaining <> 1) OR (TG_OP = 'DELETE' AND remaining <> 0) THEN
            RETURN NULL;
        END IF;
        UPDATE conversation_daily d SET automated = d.automated + step
        FROM conversation c
        WHERE c.id = cid AND c.resolved_at IS NOT NULL AND c.first_response_at IS NULL AND c.assignee_id IS NULL
          AND d.day = shopdesk_local_day(c.created_at) AND d.channel = c.channel
          AND d.intent = coalesce(c.last_intent, 'unknown');
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER conversation_daily_insert AFTER INSERT OR DELETE ON conversation "
    "FOR EACH ROW EXECUTE FUNCTION shopdesk_conversation_daily()",
    f"CREATE TRIGGER conversation_daily_update AFTER UPDATE OF {', '.join(_WATCHED)} ON conversation FOR EACH ROW "
    "WHEN (" + " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in _WATCHED) + ") "
    "EXECUTE FUNCTION shopdesk_conversation_daily()",
    "CREATE TRIGGER conversation_daily_escalated AFTER INSERT ON audit_event FOR EACH ROW "
    f"WHEN (NEW.action = '{ESCALATED}' AND NEW.conversation_id IS NOT NULL) "
    "EXECUTE FUNCTION shopdesk_conversation_daily_escalation()",
    "CREATE TRIGGER conversation_daily_unescalated AFTER DELETE ON audit_event FOR EACH ROW "
    f"WHEN (OLD.action = '{ESCALATED}' AND OLD.conversation_id IS NOT NULL) "
    "EXECUTE FUNCTION shopdesk_conversation_daily_escalation()",
)
POSTGRES_DROP = (
    "DROP TRIGGER IF EXISTS conversation_daily_unescalated ON audit_event",
    "DROP TRIGGER IF EXISTS conversation_daily_escalated ON audit_event",
    "DROP TRIGGER IF EXISTS conversation_daily_update ON conversation",
    "DROP TRIGGER IF EXISTS conversation_daily_insert ON conversation",
    "DROP FUNCTION IF EXISTS shopdesk_conversation_daily_escalation()",
    "DROP FUNCTION IF EXISTS shopdesk_conversation_daily()",
    "DROP FUNCTION IF EXISTS shopdesk_conversation_daily_add(conversation, integer)",
    "DROP FUNCTION IF EXISTS shopdesk_local_day(timestamptz)",
)

#: the offsets are listed from this instant to the next one (earlier and later times take the first
#: and the last offset)
SCHEDULE_FROM = datetime(2000, 1, 1, tzinfo=UTC)
SCHEDULE_UNTIL = datetime(2080, 1, 1, tzinfo=UTC)
FIRST_EPOCH = -(2**40)


def _zone_name(raw: str | None) -> str:
    name = (raw or "").strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


def _offsets(zone_name: str) -> list[tuple[int, int]]:
    from shopbase.sqltime import offset_schedule

    zone = ZoneInfo(zone_name)
    schedule = offset_schedule(zone, SCHEDULE_FROM, SCHEDULE_UNTIL)
    return [(FIRST_EPOCH if n == 0 else int(at.timestamp()), offset) for n, (at, offset) in enumerate(schedule)]


def upgrade() -> None:
    op.create_table(
        "conversation_daily",
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=False),
        sa.Column("conversations", sa.Integer(), nullable=False),
        sa.Column("automated", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "channel", "intent"),
    )
    op.create_table(
        "response_daily",
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("measure", sa.String(length=16), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("conversations", sa.Integer(), nullable=False),
        # the percentiles read (measure, day range) and group by seconds: from this key alone
        sa.PrimaryKeyConstraint("measure", "day", "channel", "seconds"),
    )
    op.create_table(
        "analytics_tz_offset",
        sa.Column("since_epoch", sa.BigInteger(), nullable=False),
        sa.Column("offset_seconds", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("since_epoch"),
    )
    op.create_table(
        "analytics_rollup_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("rebuilt_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    bind = op.get_bind()
    # the backfill counts in the configured zone when the environment names one (the app
    # rebuilds at start whenever the zone differs from the one recorded here)
    zone_name = _zone_name(os.environ.get("SHOPDESK_SHOP_TIMEZONE"))
    offsets = _offsets(zone_name)
    op.bulk_insert(sa.table("analytics_tz_offset", sa.column("since_epoch", sa.BigInteger()),
                            sa.column("offset_seconds", sa.Integer())),
                   [{"since_epoch": s, "offset_seconds": o} for s, o in offsets])
    if bind.dialect.name == "postgresql":
        for statement in POSTGRES_DDL:
            op.execute(statement)
        day, automated = "shopdesk_local_day(c.created_at)", (
            "CASE WHEN c.resolved_at IS NOT NULL AND c.first_response_at IS NULL AND c.assignee_id IS NULL "
            f"AND NOT EXISTS (SELECT 1 FROM audit_event a WHERE a.conversation_id = c.id AND a.action = '{ESCALATED}') "
            "THEN 1 ELSE 0 END")
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
        day, automated = _sqlite_day("c.created_at"), _sqlite_automated("c")
    op.execute(
        "INSERT INTO conversation_daily (day, channel, intent, conversations, automated) "
        "SELECT day, channel, intent, count(*), sum(automated) FROM ("
        f"SELECT {day} AS day, c.channel AS channel, coalesce(c.last_intent, 'unknown') AS intent, "
        f"{automated} AS automated FROM conversation c) counted GROUP BY day, channel, intent"
    )
    for measure, end in (("first_response", "first_response_at"), ("resolution", "resolved_at")):
        seconds = (_sqlite_seconds("c.created_at", f"c.{end}") if bind.dialect.name != "postgresql" else
                   f"CAST(round(date_part('epoch', c.{end}) - date_part('epoch', c.created_at)) AS INTEGER)")
        op.execute(
            "INSERT INTO response_daily (day, channel, measure, seconds, conversations) "
            f"SELECT day, channel, '{measure}', seconds, count(*) FROM (SELECT {day} AS day, c.channel AS channel, "
            f"{seconds} AS seconds FROM conversation c WHERE c.{end} IS NOT NULL) timed GROUP BY day, channel, seconds"
        )
    op.bulk_insert(sa.table("analytics_rollup_state", sa.column("id", sa.Integer()),
                            sa.column("timezone", sa.String()), sa.column("rebuilt_at", sa.DateTime(timezone=True))),
                   [{"id": 1, "timezone": zone_name, "rebuilt_at": datetime.now(UTC)}])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in POSTGRES_DROP:
            op.execute(statement)
    else:
        for name in reversed(SQLITE_TRIGGER_NAMES):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("analytics_rollup_state")
    op.drop_table("analytics_tz_offset")
    op.drop_table("response_daily")
    op.drop_table("conversation_daily")
