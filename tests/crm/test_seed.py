from __future__ import annotations

from sqlalchemy import func, select

from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.lookup import lookup_by_number
from crm_core.models import Contact, Customer, PhoneNumber, Vehicle
from crm_core.phones import normalize, suffix_key
from crm_core.pinyin import full_pinyin
from crm_core.seed import Batch, Generator, seed_customers
from crm_core.seed_data import vin_check_digit
from crm_core.users import DEMO_PASSWORD, ensure_demo_users, verify_password


async def rows(db: Database, model: type, *columns: object) -> list[tuple[object, ...]]:
    async with db.connect() as conn:
        query = select(*columns).order_by(model.id)  # type: ignore[attr-defined]
        return [tuple(r) for r in (await conn.execute(query)).all()]


def customers_pinyin_of(customers: list[tuple[object, ...]], name: str) -> str:
    """The stored pinyin of `name` if seeded, else its computed one (the vocabulary is random)."""
    return next((str(c[1]) for c in customers if c[0] == name), full_pinyin(name))


async def test_seed_is_deterministic_and_realistic(db: Database) -> None:
    progress: list[int] = []
    result = await seed_customers(db, 300, seed=7, on_progress=progress.append)
    assert result.customers == 300 and sum(progress) == 300
    assert result.phones >= 600 and result.contacts > 0 and result.vehicles > 0
    customers = await rows(
        db, Customer, Customer.name, Customer.name_pinyin, Customer.name_initials, Customer.kind
    )
    for name, pinyin, inits, _ in customers:
        # Names are composed from parts, each read on its own (长江 is changjiang even after
        # 亳州, where a whole-string reading would see 州长 "zhouzhang").
        assert str(pinyin).isascii() and str(pinyin).islower()
        assert len(str(inits)) == len(str(name)) and str(pinyin).startswith(str(inits)[0])
    assert {c[3] for c in customers} == {"direct", "dealer"}
    assert full_pinyin("宿州万里物流有限公司") == customers_pinyin_of(
        customers, "宿州万里物流有限公司"
    )
    for raw, e164, rev in await rows(
        db, PhoneNumber, PhoneNumber.raw, PhoneNumber.e164, PhoneNumber.digits_rev
    ):
        phone = normalize(str(raw))
        assert phone is not None and phone.e164 == e164 and suffix_key(phone.digits) == rev
    for (vin,) in await rows(db, Vehicle, Vehicle.vin):
        assert vin_check_digit(str(vin)) == str(vin)[8]


def test_same_seed_same_data() -> None:
    def make(seed: int) -> Batch:
        gen = Generator(
            seed, dict.fromkeys(("customers", "contacts", "phone_numbers", "vehicles"), 0), []
        )
        batch = Batch()
        for _ in range(30):
            gen.customer(batch, dealer=False)
        return batch

    assert make(3) == make(3)
    assert make(3).customers != make(4).customers


async def test_seeding_again_appends_new_customers(db: Database) -> None:
    await seed_customers(db, 50, seed=3)
    first = await rows(db, Customer, Customer.name, Customer.address)
    await seed_customers(db, 50, seed=3)
    both = await rows(db, Customer, Customer.name, Customer.address)
    assert both[:50] == first and len(both) == 100
    # Ids continue after the seeded ones, so normal creates still work (PostgreSQL sequences).
    made = await CustomerService(db).create({"name": "新客户测试"}, allow_duplicate=True)
    assert made.id == 101
    async with db.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(Contact))).scalar_one() > 0


async def test_seeded_numbers_are_found_by_lookup(db: Database) -> None:
    await seed_customers(db, 20, seed=11)
    (customer_id, e164), *_ = await rows(db, PhoneNumber, PhoneNumber.customer_id, PhoneNumber.e164)
    assert customer_id in [c.customer_id for c in await lookup_by_number(db, str(e164))]


async def test_demo_users_are_created_once(db: Database) -> None:
    first = await ensure_demo_users(db)
    again = await ensure_demo_users(db)
    assert [u.username for u in first] == [u.username for u in again]
    from crm_core.models import User

    users = await rows(db, User, User.username, User.phone_interface, User.password_hash)
    assert len(users) == len(first)
    assert ("agent1001", "PJSIP/1001") in [(u, p) for u, p, _ in users]
    assert all(verify_password(str(h), DEMO_PASSWORD) for _, _, h in users)
    assert not verify_password(str(users[0][2]), "wrong-password")
