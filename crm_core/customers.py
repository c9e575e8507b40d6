"""Customers and their phone numbers: create, update, delete, each one transaction with history."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import history, versions
from crm_core.db import Database, is_integrity_error
from crm_core.duplicates import find_duplicates
from crm_core.errors import DuplicateCode, NotFound, PossibleDuplicate, ValidationError
from crm_core.events import CustomerChanged, EventBus
from crm_core.models import Customer, CustomerKind, User
from crm_core.phones import parse_or_raise
from crm_core.pinyin import full_pinyin, initials
from crm_core.records import editable_fields, require, validate_fields

CUSTOMER_FIELDS = editable_fields(Customer)
MAX_PHONES = 10


def new_customer_code() -> str:
    return "C" + secrets.token_hex(4).upper()


def _phone_items(
    phones: Sequence[str | Mapping[str, str]], home_area_code: str
) -> list[dict[str, str]]:
    """Validate user-entered numbers; a bad one is refused, never silently dropped."""
    if len(phones) > MAX_PHONES:
        raise ValidationError(f"at most {MAX_PHONES} phone numbers per record", field="phones")
    items = []
    for entry in phones:
        item = {"raw": entry, "label": "phone"} if isinstance(entry, str) else dict(entry)
        parse_or_raise(item.get("raw", ""), home_area_code=home_area_code)
        items.append({"raw": item["raw"].strip(), "label": item.get("label") or "phone"})
    return items


def _check_kind(values: Mapping[str, Any]) -> None:
    kind = values.get("kind")
    if kind is not None and kind not in {k.value for k in CustomerKind}:
        raise ValidationError("customer.kind must be 'direct' or 'dealer'", field="kind")
    vip = values.get("vip_level")
    if vip is not None and not 0 <= vip <= 9:
        raise ValidationError("customer.vip_level must be from 0 to 9", field="vip_level")


class CustomerService:
    def __init__(self, db: Database, bus: EventBus | None = None) -> None:
        self.db = db
        self.bus = bus or EventBus()
        self.area = db.settings.home_area_code

    async def _get(self, session: AsyncSession, customer_id: int) -> Customer:
        row = await session.get(Customer, customer_id)
        if row is None or row.deleted:
            raise NotFound(f"customer {customer_id} does not exist", customer_id=customer_id)
        return row

    async def _check_owner(self, session: AsyncSession, owner_id: int | None) -> None:
        if owner_id is not None and await session.get(User, owner_id) is None:
            raise ValidationError(f"owning agent {owner_id} does not exist", field="owner_id")

    async def create(
        self,
        values: Mapping[str, Any],
        phones: Sequence[str | Mapping[str, str]] = (),
        *,
        user_id: int | None = None,
        allow_duplicate: bool = False,
    ) -> Customer:
        clean = validate_fields(Customer, values, allowed=CUSTOMER_FIELDS, required=["name"])
        require(Customer, clean, ["name"])
        _check_kind(clean)
        items = _phone_items(phones, self.area)
        if not allow_duplicate:
            found = await find_duplicates(
                self.db,
                name=clean["name"],
                phones=[i["raw"] for i in items],
                address=clean.get("address"),
            )
            if found:
                raise PossibleDuplicate(
                    f"{len(found)} existing customer(s) look like the same one; "
                    "check them, merge, or create anyway",
                    candidates=[c.as_dict() for c in found],
                )
        clean.setdefault("code", None)
        clean["code"] = clean["code"] or new_customer_code()
        try:
            async with self.db.transaction() as session:
                await self._check_owner(session, clean.get("owner_id"))
                row = Customer(
                    **clean,
                    name_pinyin=full_pinyin(clean["name"]),
                    name_initials=initials(clean["name"]),
                )
                session.add(row)
                await session.flush()
                await history.replace_phones(session, row.id, None, items, self.area)
                await session.flush()
                after = await history.capture(session, "customer", row.id)
                await history.record(session, "customer", row.id, "create", None, after, user_id)
        except IntegrityError as exc:
            raise self._integrity(exc, clean["code"]) from None
        await self.bus.publish(CustomerChanged(row.id, "create"))
        return row

    @staticmethod
    def _integrity(exc: IntegrityError, code: str) -> Exception:
        if is_integrity_error(exc) and "code" in str(exc.orig):
            return DuplicateCode(f"customer code {code} is already used", code=code)
        return ValidationError(f"the customer could not be saved: {exc.orig}")

    async def update(
        self,
        customer_id: int,
        changes: Mapping[str, Any],
        phones: Sequence[str | Mapping[str, str]] | None = None,
        *,
        user_id: int | None = None,
        expected_version: str | None = None,
    ) -> Customer:
        clean = validate_fields(
            Customer, changes, allowed=CUSTOMER_FIELDS, required=["name", "code"]
        )
        _check_kind(clean)
        items = None if phones is None else _phone_items(phones, self.area)
        try:
            async with self.db.transaction() as session:
                row = await self._get(session, customer_id)
                if expected_version is not None:  # issue #17: optimistic concurrency
                    await versions.check(
                        session,
                        "customer",
                        customer_id,
                        expected_version,
                        self.db.settings,
                    )
                await self._check_owner(session, clean.get("owner_id"))
                before = await history.capture(session, "customer", customer_id)
                for key, value in clean.items():
                    setattr(row, key, value)
                if "name" in clean:
                    row.name_pinyin, row.name_initials = full_pinyin(row.name), initials(row.name)
                if items is not None:
                    await history.replace_phones(session, customer_id, None, items, self.area)
                await session.flush()
                after = await history.capture(session, "customer", customer_id)
                await history.record(
                    session, "customer", customer_id, "update", before, after, user_id
                )
        except IntegrityError as exc:
            raise self._integrity(exc, str(clean.get("code"))) from None
        await self.bus.publish(CustomerChanged(customer_id, "update"))
        return row

    async def delete(
        self,
        customer_id: int,
        *,
        user_id: int | None = None,
        expected_version: str | None = None,
    ) -> None:
        """Soft delete: calls, recordings and history keep pointing at a real row."""
        async with self.db.transaction() as session:
            row = await self._get(session, customer_id)
            if expected_version is not None:
                await versions.check(
                    session, "customer", customer_id, expected_version, self.db.settings
                )
            before = await history.capture(session, "customer", customer_id)
            row.deleted = True
            await session.flush()
            after = await history.capture(session, "customer", customer_id)
            await history.record(session, "customer", customer_id, "delete", before, after, user_id)
        await self.bus.publish(CustomerChanged(customer_id, "delete"))

    async def get(self, customer_id: int) -> Customer:
        async with self.db.transaction() as session:
            return await self._get(session, customer_id)

    async def by_code(self, code: str) -> Customer:
        async with self.db.transaction() as session:
            row = (await session.scalars(select(Customer).where(Customer.code == code))).first()
        if row is None or row.deleted:
            raise NotFound(f"no customer with code {code}", code=code)
        return row
