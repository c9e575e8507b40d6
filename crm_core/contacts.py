"""Contacts of a customer (the seed's 联系人): people, their numbers, their reporting line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import history, versions
from crm_core.customers import _phone_items
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationError
from crm_core.models import Contact, Customer
from crm_core.pinyin import full_pinyin, initials
from crm_core.records import editable_fields, require, validate_fields

CONTACT_FIELDS = editable_fields(Contact)


class ContactService:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.area = db.settings.home_area_code

    async def _get(self, session: AsyncSession, contact_id: int) -> Contact:
        row = await session.get(Contact, contact_id)
        if row is None or row.deleted:
            raise NotFound(f"contact {contact_id} does not exist", contact_id=contact_id)
        return row

    async def _check_links(self, session: AsyncSession, row: Contact) -> None:
        customer = await session.get(Customer, row.customer_id)
        if customer is None or customer.deleted:
            raise NotFound(f"customer {row.customer_id} does not exist", field="customer_id")
        if row.superior_id is None:
            return
        superior = await session.get(Contact, row.superior_id)
        if superior is None or superior.customer_id != row.customer_id:
            raise ValidationError(
                "the superior contact must be another contact of the same customer",
                field="superior_id",
            )
        if superior.id == row.id:
            raise ValidationError("a contact cannot be their own superior", field="superior_id")

    async def create(
        self,
        values: Mapping[str, Any],
        phones: Sequence[str | Mapping[str, str]] = (),
        *,
        user_id: int | None = None,
    ) -> Contact:
        clean = validate_fields(Contact, values, allowed=CONTACT_FIELDS, required=["name"])
        require(Contact, clean, ["name", "customer_id"])
        items = _phone_items(phones, self.area)
        async with self.db.transaction() as session:
            row = Contact(
                **clean,
                name_pinyin=full_pinyin(clean["name"], is_person_name=True),
                name_initials=initials(clean["name"], is_person_name=True),
            )
            await self._check_links(session, row)
            session.add(row)
            await session.flush()
            await history.replace_phones(session, row.customer_id, row.id, items, self.area)
            await session.flush()
            after = await history.capture(session, "contact", row.id)
            await history.record(session, "contact", row.id, "create", None, after, user_id)
        return row

    async def update(
        self,
        contact_id: int,
        changes: Mapping[str, Any],
        phones: Sequence[str | Mapping[str, str]] | None = None,
        *,
        user_id: int | None = None,
        expected_version: str | None = None,
    ) -> Contact:
        clean = validate_fields(Contact, changes, allowed=CONTACT_FIELDS, required=["name"])
        items = None if phones is None else _phone_items(phones, self.area)
        async with self.db.transaction() as session:
            row = await self._get(session, contact_id)
            if expected_version is not None:  # issue #17: optimistic concurrency
                await versions.check(
                    session, "contact", contact_id, expected_version, self.db.settings
                )
            before = await history.capture(session, "contact", contact_id)
            for key, value in clean.items():
                setattr(row, key, value)
            await self._check_links(session, row)
            if "name" in clean:
                row.name_pinyin = full_pinyin(row.name, is_person_name=True)
                row.name_initials = initials(row.name, is_person_name=True)
            if items is not None:
                await history.replace_phones(session, row.customer_id, row.id, items, self.area)
            await session.flush()
            after = await history.capture(session, "contact", contact_id)
            await history.record(session, "contact", contact_id, "update", before, after, user_id)
        return row

    async def delete(
        self, contact_id: int, *, user_id: int | None = None, expected_version: str | None = None
    ) -> None:
        async with self.db.transaction() as session:
            row = await self._get(session, contact_id)
            if expected_version is not None:  # issue #17: optimistic concurrency
                await versions.check(
                    session, "contact", contact_id, expected_version, self.db.settings
                )
            before = await history.capture(session, "contact", contact_id)
            row.deleted = True
            await session.flush()
            after = await history.capture(session, "contact", contact_id)
            await history.record(session, "contact", contact_id, "delete", before, after, user_id)
