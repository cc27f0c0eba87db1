"""Customer profiles: find or create the profile of a contact, and link a verified contact with
the order-store customer it proved to be (called by ``contact_link``), so one profile holds the
customer's chats on every channel and their email identity."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.models import Agent, Contact, CustomerIdentity, CustomerProfile
from shopbase.clock import utcnow

__all__ = ["profile_of_contact", "profile_of_customer", "customer_link_verified", "ensure_profile",
           "ensure_customer_profile"]


async def profile_of_contact(session: AsyncSession, contact_id: int) -> CustomerProfile | None:
    stmt = (
        select(CustomerProfile)
        .join(CustomerIdentity, col(CustomerIdentity.profile_id) == col(CustomerProfile.id))
        .where(col(CustomerIdentity.contact_id) == contact_id)
    )
    return (await session.exec(stmt)).first()


async def profile_of_customer(session: AsyncSession, customer_id: int) -> CustomerProfile | None:
    stmt = (
        select(CustomerProfile)
        .join(CustomerIdentity, col(CustomerIdentity.profile_id) == col(CustomerProfile.id))
        .where(col(CustomerIdentity.customer_id) == customer_id)
    )
    return (await session.exec(stmt)).first()


async def ensure_profile(
    session: AsyncSession, contact: Contact, *, agent: Agent | None = None
) -> CustomerProfile:
    """The contact's profile; a new one (with the contact and its verified customer) if it has none."""
    assert contact.id is not None
    profile = await profile_of_contact(session, contact.id)
    if profile is not None:
        return profile
    if contact.customer_id is not None and contact.verified_at is not None:
        profile = await profile_of_customer(session, contact.customer_id)
        if profile is not None:
            session.add(CustomerIdentity(profile_id=profile.id, contact_id=contact.id, via="verified"))  # type: ignore[arg-type]
            await session.flush()
            return profile
    now = utcnow()
    profile = CustomerProfile(display_name=contact.display_name, created_at=now, updated_at=now)
    session.add(profile)
    await session.flush()
    session.add(CustomerIdentity(profile_id=profile.id, contact_id=contact.id, via="agent", created_at=now))  # type: ignore[arg-type]
    if contact.customer_id is not None and contact.verified_at is not None:
        session.add(CustomerIdentity(profile_id=profile.id, customer_id=contact.customer_id,  # type: ignore[arg-type]
                                     via="verified", created_at=now))
    await session.flush()
    write_audit(session, None, "customer.created", agent=agent,
                detail={"profile_id": profile.id, "contact_id": contact.id}, now=now)
    return profile


async def customer_link_verified(session: AsyncSession, contact: Contact, customer_id: int) -> CustomerProfile:
    """The contact proved to be ``customer_id``: both identities end up in one profile.

    No profile yet: a new one. One of them has a profile: the other joins it. Both have
    different profiles: the contact moves to the customer's (the proof is about the customer).
    """
    assert contact.id is not None
    now = utcnow()
    by_contact = await profile_of_contact(session, contact.id)
    by_customer = await profile_of_customer(session, customer_id)
    if by_customer is None and by_contact is None:
        profile = CustomerProfile(display_name=contact.display_name, created_at=now, updated_at=now)
        session.add(profile)
        await session.flush()
        session.add(CustomerIdentity(profile_id=profile.id, contact_id=contact.id, via="verified", created_at=now))  # type: ignore[arg-type]
        session.add(CustomerIdentity(profile_id=profile.id, customer_id=customer_id, via="verified", created_at=now))  # type: ignore[arg-type]
    elif by_customer is None:
        assert by_contact is not None
        profile = by_contact
        session.add(CustomerIdentity(profile_id=profile.id, customer_id=customer_id, via="verified", created_at=now))  # type: ignore[arg-type]
    elif by_contact is None:
        profile = by_customer
        session.add(CustomerIdentity(profile_id=profile.id, contact_id=contact.id, via="verified", created_at=now))  # type: ignore[arg-type]
    else:
        profile = by_customer
        if by_contact.id != by_customer.id:
            identity = (await session.exec(
                select(CustomerIdentity).where(col(CustomerIdentity.contact_id) == contact.id))).one()
            identity.profile_id = profile.id  # type: ignore[assignment]
            identity.via = "verified"
            session.add(identity)
    profile.updated_at = now
    session.add(profile)
    await session.flush()
    return profile


async def ensure_customer_profile(
    session: AsyncSession, customer_id: int, display_name: str, *, agent: Agent | None = None
) -> CustomerProfile:
    """The profile holding the order-store customer; a new one with only that identity if none."""
    profile = await profile_of_customer(session, customer_id)
    if profile is not None:
        return profile
    now = utcnow()
    profile = CustomerProfile(display_name=display_name, created_at=now, updated_at=now)
    session.add(profile)
    await session.flush()
    session.add(CustomerIdentity(profile_id=profile.id, customer_id=customer_id, via="agent", created_at=now))  # type: ignore[arg-type]
    await session.flush()
    write_audit(session, None, "customer.created", agent=agent,
                detail={"profile_id": profile.id, "customer_id": customer_id}, now=now)
    return profile
