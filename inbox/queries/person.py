"""The person behind an email address: every record Shopdesk holds about them. The one
definition that the access report (:mod:`inbox.queries.customer_export`) reads and the erasure
(:mod:`inbox.actions.customer_erase`) blanks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Contact, Conversation, CustomerIdentity, CustomerProfile
from ordersvc.models import Customer, Order, ReturnAuthorization
from ordersvc.privacy import OrderStoreMatch, customers_for_email, orders_of, personal_values
from ordersvc.service import normalize_email
from shopbase.refusal import Refused

__all__ = ["Person", "check_email", "find_person", "customer_files"]

_MAX_EMAIL = 320


@dataclass
class Person:
    """Everything that belongs to one person, found from an email address."""

    match: OrderStoreMatch
    profile_ids: list[int]
    contacts: list[Contact]
    conversation_ids: list[int]
    needles: set[str]

    @property
    def contact_ids(self) -> list[int]:
        return [c.id for c in self.contacts if c.id is not None]


def check_email(email: str) -> str:
    wanted = normalize_email(email or "")
    if not wanted or len(wanted) > _MAX_EMAIL or "@" not in wanted or not wanted.isprintable():
        raise Refused("bad_email", "Give the customer's email address (name@example.com).", status=400)
    return wanted


async def find_person(session: AsyncSession, email: str | None, *, everyone: bool = False) -> Person:
    """The customers, orders, profiles, contacts and conversations of ``email`` (or of everyone)."""
    if everyone:
        customers = list((await session.exec(select(Customer).order_by(col(Customer.id)))).all())
    else:
        customers = await customers_for_email(session, check_email(email or ""))
    customer_ids = {c.id for c in customers if c.id is not None}
    # profiles holding these customers, or contacts verified as them; then everything in them
    profile_ids: set[int] = set()
    contact_ids: set[int] = set()
    if everyone:
        profile_ids = {p for p in (await session.exec(select(CustomerProfile.id))).all() if p is not None}
        contact_ids = {c for c in (await session.exec(select(Contact.id))).all() if c is not None}
    elif customer_ids:
        verified = (await session.exec(select(Contact.id).where(col(Contact.customer_id).in_(customer_ids)))).all()
        contact_ids.update(c for c in verified if c is not None)
        found = await session.exec(select(CustomerIdentity.profile_id).where(sa.or_(
            col(CustomerIdentity.customer_id).in_(customer_ids),
            col(CustomerIdentity.contact_id).in_(contact_ids or {-1}))))
        profile_ids.update(found.all())
        while profile_ids:  # profiles merged into these (they keep a name), until nothing new
            merged = set((await session.exec(select(CustomerProfile.id).where(
                col(CustomerProfile.merged_into_id).in_(profile_ids)))).all()) - {None}
            if merged <= profile_ids:
                break
            profile_ids |= merged  # type: ignore[arg-type]
        if profile_ids:
            for contact_id, customer_id in (await session.exec(select(
                    CustomerIdentity.contact_id, CustomerIdentity.customer_id).where(
                    col(CustomerIdentity.profile_id).in_(profile_ids)))).all():
                if contact_id is not None:
                    contact_ids.add(contact_id)
                if customer_id is not None and customer_id not in customer_ids:
                    customer_ids.add(customer_id)
                    extra = await session.get(Customer, customer_id)
                    if extra is not None:
                        customers.append(extra)
    if everyone:  # every row, read without lists of ids (which could exceed a driver's parameter limit)
        orders = list((await session.exec(select(Order).order_by(col(Order.id)))).all())
        contacts = list((await session.exec(select(Contact).order_by(col(Contact.id)))).all())
        conversation_ids = [c for c in (await session.exec(select(Conversation.id))).all() if c is not None]
        match = OrderStoreMatch(customers=customers, orders=orders)
        return Person(match=match, profile_ids=sorted(profile_ids), contacts=contacts,
                      conversation_ids=sorted(conversation_ids), needles=set())
    emails = [c.email for c in customers if c.email] + ([check_email(email)] if email else [])
    orders = await orders_of(session, sorted(customer_ids), emails)
    match = OrderStoreMatch(customers=customers, orders=orders)
    contacts = list((await session.exec(select(Contact).where(col(Contact.id).in_(contact_ids)).order_by(
        col(Contact.id)))).all()) if contact_ids else []
    conversation_ids = [int(c) for c in (await session.exec(select(Conversation.id).where(
        col(Conversation.contact_id).in_(contact_ids)))).all() if c is not None] if contact_ids else []
    needles = personal_values(match)
    needles.update(e for e in emails if e)
    for contact in contacts:
        # a contact's own name is erased with the contact; elsewhere only full names are swept
        if contact.display_name and " " in contact.display_name.strip() and len(contact.display_name) >= 5:
            needles.add(contact.display_name.strip())
    return Person(match=match, profile_ids=sorted(profile_ids), contacts=contacts,
                  conversation_ids=sorted(conversation_ids), needles=needles)


async def customer_files(session: AsyncSession, files_dir: Path | None, person: Person) -> list[Path]:
    """Files of the person under ``files_dir``: ``labels/<rma number>.*``, ``invoices/<order id>.*``
    (any file whose name before the first dot is the RMA number, the order id, ``order-<id>``,
    ``invoice-<id>`` or ``label-<rma number>``) and everything under ``customers/<customer id>/``."""
    if files_dir is None or not files_dir.is_dir():
        return []
    order_ids = person.match.order_ids
    rma_numbers = list((await session.exec(select(ReturnAuthorization.rma_number).where(
        col(ReturnAuthorization.order_id).in_(order_ids)))).all()) if order_ids else []
    keys = {*rma_numbers, *(f"label-{r}" for r in rma_numbers)}
    for order_id in order_ids:
        keys.update({str(order_id), f"order-{order_id}", f"invoice-{order_id}"})
    folders = [files_dir / "customers" / str(cid) for cid in person.match.customer_ids]
    found: list[Path] = []
    for path in sorted(files_dir.rglob("*")):
        if not path.is_file():
            continue
        if path.name.split(".", 1)[0] in keys or any(folder in path.parents for folder in folders):
            found.append(path)
    return found
