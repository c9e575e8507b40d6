"""The IVR handlers against the real database, driven by a simulated Asterisk channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import update

from asterisk_conf.prompts import PROMPTS
from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.events import CallLinkRequested, EventBus, SurveyAnswered
from crm_core.lookup import Candidate, NumberLookup
from crm_core.models import User
from crm_core.settings import Settings
from crm_core.users import create_user
from crm_core.vehicles import VehicleService
from cti.agi_client import SimulatedChannel, agi_environment, simulate_channel
from cti.agi_handlers import PROMPTS_USED, KeyedRequest, build_agi_server
from cti.fastagi import FastAgiServer

HOST = "127.0.0.1"
VIP_MOBILE = "13905581234"
SHARED_LANDLINE = "0558-2211334"
UNKNOWN = "13800000000"
VIN = "LZZ1CLVB7KA123456"
StatusFor = Callable[[int], Awaitable[str | None]]


class Seeded:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.ids: dict[str, int] = {}

    async def load(self) -> Seeded:
        owner = await create_user(
            self.db,
            {"username": "zhang", "display_name": "张三", "phone_interface": "PJSIP/1001"},
        )
        customers = CustomerService(self.db)
        vehicles = VehicleService(self.db)

        async def add(key: str, values: dict[str, Any], phones: list[str]) -> int:
            row = await customers.create(values, phones, allow_duplicate=True)
            self.ids[key] = row.id
            return row.id

        vip = await add(
            "vip",
            {"name": "合肥长江重型机械有限公司", "vip_level": 2, "owner_id": owner.id},
            [VIP_MOBILE],
        )
        await vehicles.create({"vin": VIN, "customer_id": vip})
        await add("a", {"name": "安徽路桥工程一公司"}, [SHARED_LANDLINE])
        await add("b", {"name": "安徽路桥工程二公司"}, [SHARED_LANDLINE])
        await add("blocked", {"name": "黑名单客户", "blocked": True, "vip_level": 3,
                              "owner_id": owner.id}, ["13905580000"])  # fmt: skip
        await add("long", {"name": "长" * 60}, ["13905589999"])
        twin1 = await add("twin1", {"name": "甲公司"}, [])
        twin2 = await add("twin2", {"name": "乙公司"}, [])
        await vehicles.create({"vin": "LZZ1CLVB7KA654321", "customer_id": twin1})
        await vehicles.create({"vin": "LFV2A21K9K3654321", "customer_id": twin2})
        return self


@pytest.fixture
async def seeded(db: Database) -> Seeded:
    return await Seeded(db).load()


class Harness:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings, self.db = settings, db
        self.bus = EventBus()
        self.server: FastAgiServer | None = None

    async def start(self, **kwargs: Any) -> Harness:
        self.server = build_agi_server(
            self.settings, self.db, self.bus, port=0, prompt_texts=PROMPTS, **kwargs
        )
        await self.server.start()
        return self

    async def call(self, script: str, caller: str = UNKNOWN, **kwargs: Any) -> SimulatedChannel:
        assert self.server is not None
        env = agi_environment(
            script, callerid=caller, uniqueid="1795568024.7", args=kwargs.pop("args", ())
        )
        channel = await simulate_channel(HOST, self.server.bound_port, env, **kwargs)
        assert channel.closed_by_server
        return channel


@pytest.fixture
async def agi(settings: Settings, db: Database) -> AsyncIterator[Harness]:
    harness = Harness(settings, db)
    yield harness
    if harness.server is not None:
        await harness.server.stop()


def _hotline(channel: SimulatedChannel) -> dict[str, str]:
    return {k: v for k, v in channel.variables.items() if k.startswith(("HOTLINE_", "CALLERID"))}


async def test_every_prompt_the_handlers_play_is_made_by_the_installer() -> None:
    assert {name.removeprefix("hotline/") for name in PROMPTS_USED} <= set(PROMPTS)


async def test_lookup_of_a_vip_with_an_owner(seeded: Seeded, agi: Harness) -> None:
    await agi.start()
    channel = await agi.call("lookup", caller=VIP_MOBILE)
    assert _hotline(channel) == {
        "HOTLINE_CANDIDATES": "1",
        "CALLERID(name)": "合肥长江重型机械有限公司",
        "HOTLINE_CUSTOMER_ID": str(seeded.ids["vip"]),
        "HOTLINE_VIP": "1",
        "HOTLINE_BLOCKED": "0",
        "HOTLINE_QUEUE": "vip",
        "HOTLINE_STICKY": "PJSIP/1001",
    }


async def test_an_owner_an_admin_took_off_sticky_routing_is_not_rung_first(
    seeded: Seeded, agi: Harness
) -> None:
    async with seeded.db.transaction() as session:
        await session.execute(
            update(User).where(User.username == "zhang").values(sticky_owner=False)
        )
    await agi.start()
    channel = await agi.call("lookup", caller=VIP_MOBILE)
    variables = _hotline(channel)
    assert variables["HOTLINE_QUEUE"] == "vip"  # still a VIP
    assert variables.get("HOTLINE_STICKY", "") == ""


async def test_lookup_of_an_unknown_or_anonymous_caller(seeded: Seeded, agi: Harness) -> None:
    await agi.start()
    for caller in (UNKNOWN, "unknown", "anonymous"):
        channel = await agi.call("lookup", caller=caller)
        assert _hotline(channel) == {"HOTLINE_CANDIDATES": "0", "HOTLINE_CUSTOMER_ID": ""}


async def test_lookup_of_a_number_two_customers_share_names_nobody(
    seeded: Seeded, agi: Harness
) -> None:
    await agi.start()
    channel = await agi.call("lookup", caller="05582211334")
    assert _hotline(channel) == {"HOTLINE_CANDIDATES": "2", "HOTLINE_CUSTOMER_ID": ""}


async def test_lookup_of_a_blocked_customer_gets_no_vip_or_sticky_routing(
    seeded: Seeded, agi: Harness
) -> None:
    await agi.start()
    channel = await agi.call("lookup", caller="13905580000")
    variables = _hotline(channel)
    assert variables["HOTLINE_BLOCKED"] == "1"
    assert variables["HOTLINE_VIP"] == "0"
    assert variables["HOTLINE_CUSTOMER_ID"] == str(seeded.ids["blocked"])
    assert variables["HOTLINE_QUEUE"] == variables["HOTLINE_STICKY"] == ""


async def test_lookup_cuts_a_long_name_to_forty_characters(seeded: Seeded, agi: Harness) -> None:
    await agi.start()
    channel = await agi.call("lookup", caller="13905589999")
    assert channel.variables["CALLERID(name)"] == "长" * 40


class StuckFinder:
    """A CRM that never answers: the handler must give up on its own."""

    def __init__(self) -> None:
        self.called = asyncio.Event()

    async def find(self, raw_number: str | None) -> list[Candidate]:
        self.called.set()
        await asyncio.Event().wait()
        return []


async def test_a_stuck_crm_costs_the_call_nothing_but_the_data(
    seeded: Seeded, agi: Harness
) -> None:
    finder = StuckFinder()
    await agi.start(finder=finder)
    channel = await agi.call("lookup", caller=VIP_MOBILE)
    assert finder.called.is_set()
    assert _hotline(channel) == {}  # returned without data; the dialplan goes on


async def test_identify_by_vin_tail(seeded: Seeded, agi: Harness) -> None:
    await agi.start()
    channel = await agi.call("identify", keyed=["123456"])
    assert channel.played == ["hotline/identify", "hotline/identify-ok"]
    variables = _hotline(channel)
    assert variables["HOTLINE_CUSTOMER_ID"] == str(seeded.ids["vip"])
    assert variables["HOTLINE_KEY"] == "vin:123456"
    assert variables["CALLERID(name)"] == "合肥长江重型机械有限公司"
    assert variables["HOTLINE_STICKY"] == "PJSIP/1001"


async def test_identify_second_try(seeded: Seeded, agi: Harness) -> None:
    await agi.start()
    channel = await agi.call("identify", keyed=["999999", "123456#"])
    assert channel.played == [
        "hotline/identify",
        "hotline/identify-retry",
        "hotline/identify-ok",
    ]
    assert channel.variables["HOTLINE_KEY"] == "vin:123456"


@pytest.mark.parametrize(
    "keyed", [["000000", "111111"], ["654321", ""], ["", ""]], ids=["wrong", "ambiguous", "none"]
)
async def test_identify_gives_up_after_two_tries(
    seeded: Seeded, agi: Harness, keyed: list[str]
) -> None:
    await agi.start()
    channel = await agi.call("identify", keyed=keyed)
    assert channel.played == [
        "hotline/identify",
        "hotline/identify-retry",
        "hotline/identify-failed",
    ]
    assert "HOTLINE_CUSTOMER_ID" not in channel.variables


async def test_identify_by_service_request_number(seeded: Seeded, agi: Harness) -> None:
    asked: list[str] = []
    linked: list[CallLinkRequested] = []
    published = asyncio.Event()

    def on_link(event: CallLinkRequested) -> None:
        linked.append(event)
        published.set()

    agi.bus.subscribe(CallLinkRequested, on_link)

    async def request_owner(number: str) -> KeyedRequest | None:
        asked.append(number)
        return KeyedRequest(seeded.ids["a"], 77) if number == "20261125001" else None

    await agi.start(request_owner=request_owner)
    variables = {"CHANNEL(linkedid)": "1795568000.3"}
    channel = await agi.call("identify", keyed=["20261125001"], variables=variables)
    assert asked == ["20261125001"]
    assert channel.variables["HOTLINE_KEY"] == "sr:20261125001"
    assert channel.variables["HOTLINE_CUSTOMER_ID"] == str(seeded.ids["a"])
    async with asyncio.timeout(10):
        await published.wait()
    # The call is about that request: linked by the call's Linkedid.
    assert linked == [CallLinkRequested(77, "1795568000.3")]


def _status(sentence: str | None, stuck: bool = False) -> StatusFor:
    async def status_for(customer_id: int) -> str | None:
        if stuck:
            await asyncio.Event().wait()
        return sentence

    return status_for


@pytest.mark.parametrize(
    ("status_for", "customer", "played"),
    [
        (None, "", "hotline/status-need-id"),
        (None, "7", "hotline/status-none"),
        (_status(None), "7", "hotline/status-none"),
        (_status(PROMPTS["status-dispatched"]), "7", "hotline/status-dispatched"),
        (_status("您的服务单编号为12345，工程师已到达现场。"), "7", "hotline/status-open"),
        (_status("x", stuck=True), "7", "hotline/status-unavailable"),
    ],
    ids=["unidentified", "no-ticketing", "none-open", "known-sentence", "other", "stuck"],
)
async def test_request_status(
    agi: Harness, status_for: StatusFor | None, customer: str, played: str
) -> None:
    await agi.start(status_for=status_for)
    channel = await agi.call("request-status", variables={"HOTLINE_CUSTOMER_ID": customer})
    assert channel.played == [played]


async def test_survey_score_from_the_dialplan_is_published(agi: Harness) -> None:
    seen: list[SurveyAnswered] = []
    published = asyncio.Event()

    def on_survey(event: SurveyAnswered) -> None:
        seen.append(event)
        published.set()

    agi.bus.subscribe(SurveyAnswered, on_survey)
    await agi.start()
    linked = {"CHANNEL(linkedid)": "1795568000.3"}
    channel = await agi.call("survey", caller=VIP_MOBILE, args=["4"], variables=linked)
    async with asyncio.timeout(10):
        await published.wait()
    assert channel.played == []
    assert seen == [SurveyAnswered("1795568000.3", "1795568024.7", 4, VIP_MOBILE)]


async def test_survey_asks_when_the_dialplan_gave_no_score(agi: Harness) -> None:
    seen: list[SurveyAnswered] = []
    agi.bus.subscribe(SurveyAnswered, seen.append)
    await agi.start()
    asked = await agi.call("survey", keyed=["5"])
    out_of_range = await agi.call("survey", args=["9"], keyed=["5"])
    silent = await agi.call("survey")
    assert agi.server is not None
    await agi.server.stop()  # drains events in flight
    assert asked.played == ["hotline/survey-score", "hotline/thanks"]
    assert out_of_range.played == []
    assert silent.played == ["hotline/survey-score"]
    assert [(e.score, e.linkedid, e.caller) for e in seen] == [(5, "1795568024.7", UNKNOWN)]


class HeldLookup:
    """The real lookup behind a gate the test opens: a database slower than the budget."""

    def __init__(self, settings: Settings) -> None:
        self.real = NumberLookup(settings)
        self.gate = asyncio.Event()
        self.answered: list[list[Candidate]] = []

    async def find(self, raw_number: str | None) -> list[Candidate]:
        await self.gate.wait()
        found = await self.real.find(raw_number)
        self.answered.append(found)
        return found


async def test_a_lookup_over_budget_lets_the_call_go_on_and_is_not_cut_off(
    seeded: Seeded, agi: Harness, settings: Settings
) -> None:
    slow = HeldLookup(settings)
    await slow.real.open()
    try:
        await agi.start(finder=slow, budget=0.05)
        channel = await agi.call("lookup", caller=VIP_MOBILE)
        # Nothing is set and the dialplan queues the call as an unknown caller, at once ...
        assert _hotline(channel) == {}
        # ... and the late database work is finished, not cancelled half-way (a cancelled
        # query can strand its connection); shutdown waits for it.
        slow.gate.set()
        assert agi.server is not None
        await agi.server.stop()
        assert [[c.customer_id for c in found] for found in slow.answered] == [[seeded.ids["vip"]]]
    finally:
        await slow.real.close()
