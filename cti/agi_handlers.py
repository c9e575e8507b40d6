"""The IVR's FastAGI handlers: lookup, identify, request-status, survey.

A call never waits on us: all CRM work in a handler runs under a hard budget (300 ms). When
the CRM is slower, the handler gives up on the data and returns, and the dialplan routes the
call as for an unknown caller. Channel variables we set (the dialplan contract, docs/pbx.md):

- ``CALLERID(name)``: the customer's name (at most 40 characters);
- ``HOTLINE_CUSTOMER_ID``: the customer's id when exactly one customer matched, else empty;
- ``HOTLINE_CANDIDATES``: how many customers the caller number belongs to (lookup only);
- ``HOTLINE_VIP`` 1/0, ``HOTLINE_QUEUE`` ``vip`` for VIPs (else empty), ``HOTLINE_STICKY`` the
  owning agent's phone interface when that agent can take a call now (logged in, not paused,
  not on a call; else empty), ``HOTLINE_BLOCKED`` 1/0 (a blocked customer
  gets no VIP or sticky routing). These four and the name are set only for one known customer.
- ``HOTLINE_KEY``: what identified the caller on the keypad, ``vin:123456`` or ``sr:<number>``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple, TypeVar

from crm_core.db import Database
from crm_core.events import CallLinkRequested, EventBus, SurveyAnswered
from crm_core.lookup import NumberLookup
from crm_core.settings import Settings
from cti.agi_directory import CallerProfile, CustomerDirectory, NumberFinder
from cti.agi_session import AgiSession
from cti.fastagi import AgiHandler, FastAgiServer

log = logging.getLogger(__name__)

T = TypeVar("T")
StatusFor = Callable[[int], Awaitable[str | None]]


class KeyedRequest(NamedTuple):
    """A service request found by the number a caller keyed: whose it is, and which."""

    customer_id: int
    request_id: int


RequestOwner = Callable[[str], Awaitable[KeyedRequest | None]]
AgentAvailable = Callable[[str], bool]  # interface -> may the dialplan ring it directly

CRM_BUDGET = 0.3
NAME_MAX = 40
IDENTIFY_TRIES = 2
DIGIT_TIMEOUT_MS = 6000
MAX_KEYED_DIGITS = 20
VIN_TAIL_DIGITS = 6

# Sound files (asterisk_conf/prompts.py makes them under sounds/zh/hotline/).
PROMPT_IDENTIFY = "hotline/identify"
PROMPT_IDENTIFY_RETRY = "hotline/identify-retry"
PROMPT_IDENTIFY_OK = "hotline/identify-ok"
PROMPT_IDENTIFY_FAILED = "hotline/identify-failed"
PROMPT_STATUS_NEED_ID = "hotline/status-need-id"
PROMPT_STATUS_NONE = "hotline/status-none"
PROMPT_STATUS_UNAVAILABLE = "hotline/status-unavailable"
PROMPT_STATUS_OPEN = "hotline/status-open"
PROMPT_SURVEY = "hotline/survey-score"
PROMPT_THANKS = "hotline/thanks"
PROMPTS_USED = (
    PROMPT_IDENTIFY,
    PROMPT_IDENTIFY_RETRY,
    PROMPT_IDENTIFY_OK,
    PROMPT_IDENTIFY_FAILED,
    PROMPT_STATUS_NEED_ID,
    PROMPT_STATUS_NONE,
    PROMPT_STATUS_UNAVAILABLE,
    PROMPT_STATUS_OPEN,
    PROMPT_SURVEY,
    PROMPT_THANKS,
)


def caller_name(name: str) -> str:
    """A CALLERID(name): one line, at most NAME_MAX characters."""
    return " ".join(name.split())[:NAME_MAX]


class IvrHandlers:
    """The handlers, sharing one directory, bus and budget; `routes()` maps script names."""

    def __init__(
        self,
        directory: CustomerDirectory,
        bus: EventBus,
        *,
        status_for: StatusFor | None = None,
        request_owner: RequestOwner | None = None,
        prompt_texts: Mapping[str, str] | None = None,
        budget: float = CRM_BUDGET,
        agent_available: AgentAvailable | None = None,
    ) -> None:
        self.directory = directory
        # Without it (no AMI link to know agent states) every owner is tried; with it, an
        # owner who is logged out, paused or busy is skipped and the call goes to the queue.
        self.agent_available = agent_available
        self.bus = bus
        self.status_for = status_for
        self.request_owner = request_owner
        # A status sentence is played from the prompt recorded with exactly that text.
        self._prompt_by_text = {t: f"hotline/{n}" for n, t in (prompt_texts or {}).items()}
        self.budget = budget
        self._background: set[asyncio.Future[Any]] = set()

    def routes(self) -> dict[str, AgiHandler]:
        return {
            "lookup": self.lookup,
            "identify": self.identify,
            "request-status": self.request_status,
            "survey": self.survey,
        }

    async def _within_budget(self, what: str, work: Awaitable[T], uniqueid: str) -> T | None:
        """The work's result, or None when the CRM is slower than the budget or fails.

        Late work is left to finish in the background, never cancelled: a database call cut
        off mid-connect or mid-query strands its pooled connection (it surfaced as unclosed
        aiosqlite connections on a loaded machine). `drain()` waits for it at shutdown."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._forget)
        done, _pending = await asyncio.wait({task}, timeout=self.budget)
        if not done:
            ms = self.budget * 1000
            log.warning("%s over the %.0f ms budget, uniqueid=%s", what, ms, uniqueid)
            task.add_done_callback(lambda late: _log_late_failure(late, what, uniqueid))
            return None
        try:
            return task.result()
        except Exception:
            log.exception("%s failed, uniqueid=%s", what, uniqueid)
        return None

    def _forget(self, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not also report it as unretrieved

    async def _apply(self, session: AgiSession, profile: CallerProfile | None) -> None:
        if profile is None:
            await session.set_variable("HOTLINE_CUSTOMER_ID", "")
            return
        await session.set_variable("CALLERID(name)", caller_name(profile.name))
        await session.set_variable("HOTLINE_CUSTOMER_ID", str(profile.customer_id))
        await session.set_variable("HOTLINE_VIP", "1" if profile.vip else "0")
        await session.set_variable("HOTLINE_BLOCKED", "1" if profile.blocked else "0")
        # Always set, so identifying as another customer than the lookup found leaves
        # nothing of the first one's routing behind.
        await session.set_variable("HOTLINE_QUEUE", "vip" if profile.vip else "")
        owner = "" if profile.blocked else (profile.owner_interface or "")
        if owner and self.agent_available is not None and not self.agent_available(owner):
            log.info("sticky agent %s cannot take the call now: queue", owner)
            owner = ""
        sticky = owner
        await session.set_variable("HOTLINE_STICKY", sticky)

    # ---- lookup: who is calling, from the caller number

    async def lookup(self, session: AgiSession) -> None:
        env = session.env
        match = await self._within_budget(
            "lookup", self.directory.by_number(env.callerid), env.uniqueid
        )
        if match is None:
            return
        await session.set_variable("HOTLINE_CANDIDATES", str(match.candidates))
        await self._apply(session, match.profile)

    # ---- identify: a VIN tail or a service-request number keyed on the phone

    async def identify(self, session: AgiSession) -> None:
        for attempt in range(IDENTIFY_TRIES):
            prompt = PROMPT_IDENTIFY if attempt == 0 else PROMPT_IDENTIFY_RETRY
            keyed = await session.get_data(prompt, DIGIT_TIMEOUT_MS, MAX_KEYED_DIGITS)
            if keyed is None:
                return
            digits = keyed.strip("*#")
            found = await self._within_budget(
                "identify", self._match_keyed(digits), session.env.uniqueid
            )
            if found is not None:
                key, profile, request_id = found
                await session.set_variable("HOTLINE_KEY", key)
                await self._apply(session, profile)
                await session.stream_file(PROMPT_IDENTIFY_OK)
                if request_id is not None:
                    await self._link_call(session, request_id)
                return
            log.info("identify: %r matched nobody, uniqueid=%s", digits, session.env.uniqueid)
        await session.stream_file(PROMPT_IDENTIFY_FAILED)

    async def _link_call(self, session: AgiSession, request_id: int) -> None:
        """The caller keyed a request number: the call is about that request."""
        linkedid = (await session.get_variable("CHANNEL(linkedid)")) or session.env.uniqueid
        self._in_background(self.bus.publish(CallLinkRequested(request_id, linkedid)))

    def _in_background(self, work: Awaitable[None]) -> None:
        # Subscribers write to the database; the caller does not wait for that.
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _match_keyed(self, digits: str) -> tuple[str, CallerProfile, int | None] | None:
        """(HOTLINE_KEY, the customer, the request keyed if it was a request number)."""
        if not digits.isdigit():
            return None
        if len(digits) == VIN_TAIL_DIGITS:
            profiles = await self.directory.by_vin_tail(digits)
            if len(profiles) == 1:
                return f"vin:{digits}", profiles[0], None
        if self.request_owner is not None:
            keyed = await self.request_owner(digits)
            if keyed is not None:
                profile = await self.directory.by_id(keyed.customer_id)
                if profile is not None:
                    return f"sr:{digits}", profile, keyed.request_id
        return None

    # ---- request-status: the caller's open service request, read out

    async def request_status(self, session: AgiSession) -> None:
        raw_id = (await session.get_variable("HOTLINE_CUSTOMER_ID")) or ""
        if not raw_id.isdigit():
            await session.stream_file(PROMPT_STATUS_NEED_ID)
            return
        if self.status_for is None:
            await session.stream_file(PROMPT_STATUS_NONE)
            return
        sentence = await self._within_budget(
            "request-status", self._status_text(int(raw_id)), session.env.uniqueid
        )
        if sentence is None:
            await session.stream_file(PROMPT_STATUS_UNAVAILABLE)
        elif sentence == "":
            await session.stream_file(PROMPT_STATUS_NONE)
        else:
            await session.stream_file(self._prompt_by_text.get(sentence, PROMPT_STATUS_OPEN))

    async def _status_text(self, customer_id: int) -> str:
        assert self.status_for is not None
        return (await self.status_for(customer_id)) or ""

    # ---- survey: a 1-5 score, from the dialplan's Read (agi_arg_1), or keyed here without one

    async def survey(self, session: AgiSession) -> None:
        env = session.env
        given = env.args[0].strip() if env.args else ""
        if given:
            score = _score(given)
        else:  # called without the dialplan's Read: ask here
            score = _score(await session.get_data(PROMPT_SURVEY, DIGIT_TIMEOUT_MS, 1) or "")
            if score is not None:
                await session.stream_file(PROMPT_THANKS)
        if score is None:
            log.info("survey: no valid score (%r), uniqueid=%s", given, env.uniqueid)
            return
        linkedid = (await session.get_variable("CHANNEL(linkedid)")) or env.uniqueid
        self._in_background(
            self.bus.publish(SurveyAnswered(linkedid, env.uniqueid, score, env.callerid))
        )

    async def drain(self, grace: float = 5.0) -> None:
        """Let survey events in flight reach their subscribers (server shutdown)."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=grace)


def _log_late_failure(task: asyncio.Future[Any], what: str, uniqueid: str) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("%s failed after its budget, uniqueid=%s: %r", what, uniqueid, exc)


def _score(text: str) -> int | None:
    text = text.strip()
    return int(text) if len(text) == 1 and text in "12345" else None


def build_agi_server(
    settings: Settings,
    db: Database,
    bus: EventBus,
    status_for: StatusFor | None = None,
    *,
    request_owner: RequestOwner | None = None,
    prompt_texts: Mapping[str, str] | None = None,
    finder: NumberFinder | None = None,
    budget: float = CRM_BUDGET,
    port: int | None = None,
    agent_available: AgentAvailable | None = None,
    extra_routes: Mapping[str, AgiHandler] | None = None,
) -> FastAgiServer:
    """The FastAGI server with every IVR handler, listening on settings.fastagi_host/port.

    The caller-number lookup keeps its own read connection (NumberLookup) open from start()
    to stop(). `prompt_texts` is asterisk_conf.prompts.PROMPTS (name -> text), so a status
    sentence from `status_for` is played from the prompt recorded with that text.
    `extra_routes`: more scripts (the call-center operations' handlers, cti/operations_agi).
    """
    number_lookup: NumberLookup | None = None
    if finder is None:
        number_lookup = finder = NumberLookup(settings)
    directory = CustomerDirectory(db, finder)
    handlers = IvrHandlers(
        directory,
        bus,
        status_for=status_for,
        request_owner=request_owner,
        prompt_texts=prompt_texts,
        budget=budget,
        agent_available=agent_available,
    )

    async def on_start() -> None:
        if number_lookup is not None:
            await number_lookup.open()

    async def on_stop() -> None:
        try:
            await handlers.drain()
        finally:
            if number_lookup is not None:
                await number_lookup.close()

    return FastAgiServer(
        settings.fastagi_host,
        settings.fastagi_port if port is None else port,
        {**handlers.routes(), **(extra_routes or {})},
        on_start=on_start,
        on_stop=on_stop,
    )
