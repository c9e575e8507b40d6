"""Users and roles: agents with phone interfaces, supervisors, technicians, admins."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crm_core.db import Database
from crm_core.errors import DuplicateCode, ValidationError
from crm_core.models import CallQueue, Office, QueueMember, Role, User
from crm_core.records import editable_fields, require, validate_fields

USER_FIELDS = [f for f in editable_fields(User) if f != "password_hash"]
_hasher = PasswordHasher()
MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def check_password_policy(password: str, username: str) -> None:
    """The policy for passwords people choose (admins and users): long enough, not the user
    name, more than one kind of character."""
    if len(password) < MIN_PASSWORD:
        raise ValidationError(
            f"a password needs at least {MIN_PASSWORD} characters", field="password"
        )
    if username and username.lower() in password.lower():
        raise ValidationError("the password must not contain the user name", field="password")
    kinds = [
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ]
    if sum(kinds) < 2:
        raise ValidationError(
            "the password needs two kinds of characters (letters, digits, symbols)",
            field="password",
        )


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def create_user(db: Database, values: Mapping[str, Any], password: str | None = None) -> User:
    clean = validate_fields(
        User, values, allowed=USER_FIELDS, required=["username", "display_name"]
    )
    require(User, clean, ["username", "display_name"])
    clean.setdefault("role", Role.AGENT.value)
    if clean["role"] not in {r.value for r in Role}:
        raise ValidationError(
            f"role must be one of {', '.join(r.value for r in Role)}", field="role"
        )
    interface = clean.get("phone_interface")
    if interface and not interface.startswith("PJSIP/"):
        raise ValidationError("phone_interface looks like PJSIP/1001", field="phone_interface")
    row = User(**clean, password_hash=hash_password(password) if password else None)
    try:
        async with db.transaction() as session:
            session.add(row)
    except IntegrityError:
        raise DuplicateCode(f"username {clean['username']} is taken") from None
    return row


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    phone: str | None


DEMO_PASSWORD = "hotline-demo"  # noqa: S105 - printed by `make run` for the local demo only
DEMO_USERS = (
    ("admin", "系统管理员", "admin", None, None, None),
    ("supervisor", "华东区主管 周敏", "supervisor", None, "华东服务中心", "华东"),
    ("agent1001", "坐席 李娜", "agent", "PJSIP/1001", "400热线", "华东"),
    ("agent1002", "坐席 王强", "agent", "PJSIP/1002", "400热线", "华东"),
    ("agent1003", "坐席 张静", "agent", "PJSIP/1003", "400热线", "华北"),
    ("tech01", "服务工程师 陈刚", "technician", None, "合肥服务站", "华东"),
)


DEMO_OFFICES = (("400热线", "华东"), ("华东服务中心", "华东"), ("合肥服务站", "华东"))


async def _ensure_demo_offices(db: Database) -> None:
    async with db.transaction() as session:
        existing = set((await session.scalars(select(Office.name))).all())
        for name, region in DEMO_OFFICES:
            if name not in existing:
                session.add(Office(name=name, region=region, active=True))


async def _ensure_demo_memberships(db: Database, usernames: list[str]) -> None:
    """Demo agents answer both queues, as every agent did before queues had members."""
    async with db.transaction() as session:
        queues = (await session.scalars(select(CallQueue.id))).all()
        users = (
            await session.scalars(
                select(User.id).where(
                    User.username.in_(usernames), User.phone_interface.is_not(None)
                )
            )
        ).all()
        have = set((await session.execute(select(QueueMember.queue_id, QueueMember.user_id))).all())
        for queue_id in queues:
            for user_id in users:
                if (queue_id, user_id) not in have:
                    session.add(QueueMember(queue_id=queue_id, user_id=user_id, penalty=0))


async def ensure_demo_users(db: Database) -> list[DemoLogin]:
    """Create the demo logins that are missing; never touch an existing account."""
    await _ensure_demo_offices(db)
    async with db.transaction() as session:
        existing = set((await session.scalars(select(User.username))).all())
    logins = []
    for username, name, role, phone, office, region in DEMO_USERS:
        if username not in existing:
            await create_user(
                db,
                {
                    "username": username,
                    "display_name": name,
                    "role": role,
                    "phone_interface": phone,
                    "office": office,
                    "region": region,
                },
                password=DEMO_PASSWORD,
            )
        logins.append(DemoLogin(username, DEMO_PASSWORD, role, phone))
    created = [u[0] for u in DEMO_USERS if u[0] not in existing]
    await _ensure_demo_memberships(db, created)
    return logins
