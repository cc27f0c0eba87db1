"""Proactive shipment updates: who hears about a parcel, when, and the small job that sends them.

The trigger is durable: ``ordersvc.shipment_updates`` adds a ``ShipmentUpdate`` row in the
transaction that moved the shipment (a Shopify fulfillment webhook, a tracking event) or in
the periodic lateness check. :class:`ProactiveJob` claims due rows and hands each one to the
``shipment_notify`` action, one transaction per row, so a crash loses nothing (an unfinished
row is claimed again) and a finished row is never sent again.

Rules, all in :func:`inbox.actions.shipment_notify.shipment_notify`:

* **Who.** The order's customer, through a contact that proved to be that customer (verified
  through the bot: ``Contact.customer_id`` + ``verified_at``) on a channel we can write to
  first: Telegram, or the web widget if the visitor allowed updates (``updates_allowed_at``).
  A customer who said "stop" (``updates_stopped_at``) hears nothing. No such contact: nothing
  is sent, the row is closed as ``no_channel`` and logged once.
* **When.** Never between 21:00 and 08:00 in the customer's time zone: the row waits until
  08:00. The zone is :func:`customer_timezone`: the shipping address's country when all of
  that country's zones (CLDR data through Babel) share one UTC offset at that moment (Spain
  with the Canaries, the USA or Russia have several: the province is not mapped), otherwise
  the shop's time zone (``SHOPDESK_SHOP_TIMEZONE``).
* **What.** Per kind (out for delivery, delivered, failed attempt, exception, late), the
  merchant may switch updates off (``ShopSetting('customer_updates')``; CLI ``shopdesk
  updates``); one message per shipment and status (the unique row). With the merchant's
  ``paid_broadcast`` switch on, Telegram updates are sent as paid broadcasts (faster bulk rate).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from babel.core import get_global
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import ShipmentUpdate
from ordersvc.service import get_setting, put_setting
from ordersvc.shipment_updates import UPDATE_KINDS, due_updates, finish_update, note_late_shipments
from shopbase.clock import utcnow
from shopbase.formatting import zone

__all__ = [
    "SETTINGS_KEY",
    "DEFAULT_SETTINGS",
    "SETTING_KINDS",
    "PAID_BROADCAST",
    "QUIET_START",
    "QUIET_END",
    "ProactiveJob",
    "customer_timezone",
    "quiet_until",
    "update_settings",
    "set_update_kind",
]

log = logging.getLogger(__name__)

SETTINGS_KEY = "customer_updates"
#: the merchant's opt-in to Telegram's paid broadcasts for delivery updates (``allow_paid_broadcast``,
#: Bot API 7.11): up to 1,000 messages a second instead of 30, Telegram charging Stars per message
#: over the free 30/s; off unless switched on
PAID_BROADCAST = "paid_broadcast"
#: every switch a merchant has: the shipment kinds, the satisfaction survey and paid broadcasts
SETTING_KINDS: tuple[str, ...] = (*UPDATE_KINDS, "csat", PAID_BROADCAST)
DEFAULT_SETTINGS: dict[str, Any] = {kind: kind != PAID_BROADCAST for kind in SETTING_KINDS}
QUIET_START = time(21, 0)
QUIET_END = time(8, 0)


async def update_settings(session: AsyncSession) -> dict[str, bool]:
    """Which kinds of customer updates the merchant allows (all by default)."""
    stored = await get_setting(session, SETTINGS_KEY, DEFAULT_SETTINGS)
    return {kind: bool(stored.get(kind, DEFAULT_SETTINGS[kind])) for kind in SETTING_KINDS}


async def set_update_kind(session: AsyncSession, kind: str, enabled: bool) -> dict[str, bool]:
    """Switch one kind on or off (caller's transaction); ValueError for an unknown kind."""
    if kind not in SETTING_KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of: {', '.join(SETTING_KINDS)}")
    current = await update_settings(session)
    current[kind] = bool(enabled)
    await put_setting(session, SETTINGS_KEY, current)
    return current


@lru_cache(maxsize=512)
def _country_zones(country: str) -> tuple[str, ...]:
    zones = get_global("territory_zones").get(country.upper()) or ()
    return tuple(zones)


def customer_timezone(address: dict[str, Any] | None, shop_timezone: str, now: datetime) -> tzinfo:
    """The customer's time zone (see the module docstring for the rule)."""
    country = address.get("country_code") if isinstance(address, dict) else None
    if isinstance(country, str) and len(country.strip()) == 2:
        zones = _country_zones(country.strip())
        if zones:
            offsets = {now.astimezone(zone(name)).utcoffset() for name in zones}
            if len(offsets) == 1:
                return zone(zones[0])
    return zone(shop_timezone)


def quiet_until(now: datetime, tz: tzinfo) -> datetime | None:
    """None when ``now`` is a fine time to write in ``tz``; else the next 08:00 there (UTC)."""
    local = now.astimezone(tz)
    if QUIET_END <= local.time() < QUIET_START:
        return None
    day = local.date() if local.time() < QUIET_END else local.date() + timedelta(days=1)
    morning = datetime.combine(day, QUIET_END, tzinfo=tz)
    # a DST jump at 08:00 is not a worry (they happen at night); normalise through UTC
    return morning.astimezone(now.tzinfo or tz)


Notify = Callable[[AsyncSession, Any, datetime], Awaitable[str]]
#: the same for a chunk of updates (one outcome each, in order): a few statements per chunk
NotifyMany = Callable[[AsyncSession, Sequence[Any], datetime], Awaitable[list[str]]]


class ProactiveJob:
    """The periodic job: note late parcels, then deliver due updates, ``chunk`` per transaction
    (a failing chunk is retried one update per transaction, and a failing update is closed as
    ``failed``).

    Small on purpose (``alerts`` has its own job for merchant rules). ``wake()`` after a
    Shopify webhook makes it run at once; otherwise it runs every ``interval`` seconds.
    ``clock`` is injectable so tests control time. ``notify_many`` (optional) handles a whole
    chunk at once (``inbox.actions.shipment_notify.shipment_notify_many``); ``notify`` is then
    only used for the one-by-one retry of a failing chunk.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], notify: Notify, *,
                 interval: float = 30.0, clock: Callable[[], datetime] = utcnow, batch: int = 1000,
                 chunk: int = 50, notify_many: NotifyMany | None = None) -> None:
        self.sessions = sessions
        self.notify = notify
        self.notify_many = notify_many
        self.interval = interval
        self.clock = clock
        self.batch = batch
        self.chunk = chunk
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="proactive-updates")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run_once(self, *, late: bool = True) -> dict[str, int]:
        """One pass; returns how many updates ended in each outcome (and how many were postponed).
        ``late``: look for parcels past their ETA first (a scan over open shipments; the loop does
        it at most once per ``interval``, not on every webhook's wake-up)."""
        now = self.clock()
        outcomes: dict[str, int] = {}
        if late:
            async with self.sessions() as session:
                await note_late_shipments(session, now)
                await session.commit()
        while True:
            async with self.sessions() as session:
                due = await due_updates(session, now, limit=self.chunk)
                ids = [row.id for row in due]
                try:
                    if self.notify_many is not None:
                        done = await self.notify_many(session, due, now)
                    else:
                        done = [await self.notify(session, row, now) for row in due]
                    await session.commit()
                except Exception:
                    await session.rollback()
                    done = None
            if not ids:
                break
            if done is None:  # one bad row must not hold up the others: go one by one
                done = [await self._one(row_id, now) for row_id in ids if row_id is not None]
            for outcome in done:
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if sum(outcomes.values()) >= self.batch:
                self._wake.set()  # more to do: go on right away, but let others run first
                break
        return outcomes

    async def _one(self, row_id: int, now: datetime) -> str:
        """One update in its own transaction; a failure closes it as ``failed`` (never retried forever)."""
        async with self.sessions() as session:
            row = await session.get(ShipmentUpdate, row_id, with_for_update=True)
            if row is None or row.processed_at is not None:
                return "gone"
            try:
                outcome = await self.notify(session, row, now)
                await session.commit()
                return outcome
            except Exception:
                log.exception("proactive update %s failed; it is closed as failed", row_id)
                await session.rollback()
        async with self.sessions() as session:
            row = await session.get(ShipmentUpdate, row_id)
            if row is not None and row.processed_at is None:
                finish_update(session, row, "failed", now)
            await session.commit()
        return "failed"

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        late_checked = float("-inf")
        while True:
            try:
                late = loop.time() - late_checked >= self.interval
                if late:
                    late_checked = loop.time()
                await self.run_once(late=late)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("proactive updates: a pass failed; trying again later")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
