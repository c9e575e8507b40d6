"""FastAGI handlers of the call-center operations: opening hours, overflow, voicemail and the
queue callback. The dialplan contract (asterisk_conf/templates/extensions.conf.j2):

- ``hours`` (arg ``<queue>:<clock>``) sets ``HOTLINE_OPEN`` 1/0 and, when closed,
  ``HOTLINE_CLOSED_PROMPT`` (why we are closed, then the queue's hours). Decided here on every
  call, so a change of hours, a holiday or an admin's closure needs no PBX reload. ``clock``
  (an ISO time to assume) is honoured in PBX test mode only.
- ``route`` (arg ``overflow:<queue>``) notes on the call that it left the queue for overflow.
- ``voicemail`` notes that the caller was sent to leave a message (the callback list shows it).
- ``callback-request`` (arg ``<queue>:<epoch joined>``) registers the queue callback and sets
  ``HOTLINE_CALLBACK`` ok; ``callback-leg`` (arg: attempt) tells the callback's queue leg its
  queue and customer; ``callback-result`` (arg ``<attempt>:<DIALSTATUS>``) settles an attempt.

Like the IVR, every handler gives up on the database after a budget: the dialplan then goes
on as if the service were down (open, no callback), and the caller is never stuck.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import or_, select, update

import cti.callbacks as callbacks
from crm_core.business_hours import Closure, OpenState, state_at
from crm_core.db import Database
from crm_core.models import CallQueue, Customer, QueueClosure
from cti.agi_session import AgiSession
from cti.fastagi import AgiHandler
from cti.models import Call

log = logging.getLogger(__name__)
T = TypeVar("T")
BUDGET = 1.0
CLOSED_PROMPTS = {
    "hours": "hotline/closed",
    "holiday": "hotline/closed-holiday",
    "closure": "hotline/closed-closure",
}
ServerOf = Callable[[str], str]  # linkedid -> the AMI server name that carries the call


class OperationsHandlers:
    def __init__(
        self,
        db: Database,
        server_of: ServerOf,
        *,
        test_clock: bool = False,
        budget: float = BUDGET,
    ) -> None:
        self.db = db
        self.server_of = server_of
        self.test_clock = test_clock
        self.budget = budget
        self._background: set[asyncio.Task[Any]] = set()
        self._has_hours: dict[str, bool] = {}  # queue -> has weekly hours (a prompt exists)

    def routes(self) -> dict[str, AgiHandler]:
        return {
            "hours": self.hours,
            "route": self.route,
            "voicemail": self.voicemail,
            "callback-request": self.callback_request,
            "callback-leg": self.callback_leg,
            "callback-result": self.callback_result,
        }

    async def _budgeted(self, what: str, work: Awaitable[T]) -> T | None:
        try:
            return await asyncio.wait_for(work, self.budget)
        except Exception as exc:
            log.error("%s failed (%r): the dialplan goes on without it", what, exc)
            return None

    @staticmethod
    def _arg(session: AgiSession) -> tuple[str, str]:
        raw = session.env.args[0] if session.env.args else ""
        first, _, rest = raw.partition(":")
        return first.strip(), rest.strip()

    # ---- opening hours

    async def hours(self, session: AgiSession) -> None:
        queue, clock = self._arg(session)
        now = self._now(clock)
        state = await self._budgeted("hours", self._state(queue, now))
        if state is None:
            return  # HOTLINE_OPEN stays empty: treated as open
        await session.set_variable("HOTLINE_OPEN", "1" if state.open else "0")
        if state.open:
            return
        prompts = [CLOSED_PROMPTS[state.reason]]
        if self._has_hours.get(queue):
            prompts.append(f"hotline/hours-{queue}")
        await session.set_variable("HOTLINE_CLOSED_PROMPT", "&".join(prompts))
        linkedid = await self._linkedid(session)
        self._later(self._mark(linkedid, routed="closed"))
        log.info("queue %s closed (%s %s) for %s", queue, state.reason, state.detail, linkedid)

    def _now(self, clock: str) -> datetime:
        if clock and self.test_clock:
            try:
                given = datetime.fromisoformat(clock)
                if given.tzinfo is not None:
                    return given
            except ValueError:
                log.warning("ignoring a bad test clock %r", clock)
        return datetime.now(UTC)

    async def _state(self, queue: str, now: datetime) -> OpenState | None:
        async with self.db.transaction() as session:
            row = (await session.scalars(select(CallQueue).where(CallQueue.name == queue))).first()
            if row is None:
                return None
            closures = await session.scalars(
                select(QueueClosure).where(
                    or_(QueueClosure.queue_id.is_(None), QueueClosure.queue_id == row.id),
                    QueueClosure.starts_at <= now,
                    QueueClosure.ends_at > now,
                )
            )
            found = [Closure(c.starts_at, c.ends_at, c.reason) for c in closures]
            self._has_hours[queue] = bool(row.hours and row.hours.strip())
            return state_at(row.hours, row.holiday_calendar, found, now)

    # ---- overflow and voicemail: facts about the call for the callback list and the KPIs

    async def route(self, session: AgiSession) -> None:
        kind, queue = self._arg(session)
        if kind != "overflow":
            return
        linkedid = await self._linkedid(session)
        self._later(self._mark(linkedid, routed="overflow", overflowed_from=queue[:40]))

    async def voicemail(self, session: AgiSession) -> None:
        linkedid = await self._linkedid(session)
        self._later(self._mark(linkedid, voicemail_at=datetime.now(UTC)))

    async def _mark(self, linkedid: str, **values: Any) -> None:
        """Set columns on the call's log row. The row is written when the call starts, long
        before any of these prompts; one retry covers a call-log writer that lags."""
        for delay in (0.0, 1.0, 3.0):
            await asyncio.sleep(delay)
            async with self.db.transaction() as session:
                done = await session.execute(
                    update(Call).where(Call.linkedid == linkedid).values(**values)
                )
            if done.rowcount:  # type: ignore[attr-defined]
                return
        log.warning("call %s has no log row: %s not recorded", linkedid, sorted(values))

    # ---- queue callback

    async def callback_request(self, session: AgiSession) -> None:
        queue, joined = self._arg(session)
        linkedid = await self._linkedid(session)
        try:
            place_at = datetime.fromtimestamp(float(joined), UTC)
        except (ValueError, OverflowError, OSError):
            place_at = datetime.now(UTC)
        number = session.env.callerid
        if not queue or not number or not number.lstrip("+").isdigit():
            log.warning("callback refused for %s: no queue or no caller number", linkedid)
            return
        job = await self._budgeted(
            "callback-request",
            callbacks.request(
                self.db,
                server=self.server_of(linkedid),
                linkedid=linkedid,
                queue=queue,
                number=number,
                place_at=place_at,
                max_attempts=self.db.settings.callback_attempts,
            ),
        )
        if job is not None:
            await session.set_variable("HOTLINE_CALLBACK", "ok")
            log.info("callback %s registered for %s in %s", job.id, linkedid, queue)

    async def callback_leg(self, session: AgiSession) -> None:
        chosen = session.env.args[0].strip() if session.env.args else ""
        attempt = await self._budgeted("callback-leg", callbacks.attempt_details(self.db, chosen))
        if attempt is None:
            return  # HOTLINE_QUEUE stays empty: the leg ends without calling anybody
        name = await self._budgeted("callback-leg name", self._customer_name(attempt))
        await session.set_variable("CALLERID(num)", attempt.number)
        if name:
            await session.set_variable("CALLERID(name)", name[:40])
        if attempt.customer_id is not None:
            await session.set_variable("HOTLINE_CUSTOMER_ID", str(attempt.customer_id))
        await session.set_variable("HOTLINE_QUEUE", attempt.queue)
        linkedid = await self._linkedid(session)
        self._later(self._mark(linkedid, routed="callback_call"))

    async def _customer_name(self, attempt: callbacks.Attempt) -> str | None:
        if attempt.customer_id is None:
            return None
        async with self.db.transaction() as session:
            customer = await session.get(Customer, attempt.customer_id)
            return customer.name if customer is not None else None

    async def callback_result(self, session: AgiSession) -> None:
        chosen, status = self._arg(session)
        retry = timedelta(seconds=self.db.settings.callback_retry_seconds)
        state = await self._budgeted(
            "callback-result", callbacks.record_result(self.db, chosen, status or "UNKNOWN", retry)
        )
        log.info("callback attempt %s: %s -> %s", chosen, status, state)

    # ---- helpers

    @staticmethod
    async def _linkedid(session: AgiSession) -> str:
        return (await session.get_variable("CHANNEL(linkedid)")) or session.env.uniqueid

    def _later(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("recording a call fact failed: %r", exc)

    async def drain(self, grace: float = 5.0) -> None:
        if self._background:
            await asyncio.wait(set(self._background), timeout=grace)
