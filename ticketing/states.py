"""Pure enum state machines for service requests, work orders and follow-ups.

No database, no clock: each machine maps (state, action) to the next state or raises a typed
IllegalTransition. The service layer stores the result and records the transition.
Labels follow the seed's service chapter (服务请求, 技术科审核, 办事处, 服务派工单, 回访).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from ticketing.errors import (
    IllegalFollowUpTransition,
    IllegalRequestTransition,
    IllegalTransition,
    IllegalWorkOrderTransition,
)


class Channel(enum.StrEnum):
    PHONE = "phone"
    SMS = "sms"
    WEB = "web"


class Category(enum.StrEnum):
    REPAIR = "repair"
    COMPLAINT = "complaint"
    CONSULTATION = "consultation"
    PARTS = "parts"


class Priority(enum.StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class RequestState(enum.StrEnum):
    NEW = "new"
    RESOLVED_BY_PHONE = "resolved_by_phone"
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    COMPLAINT_REVIEW = "complaint_review"
    COMPLAINT_HANDLING = "complaint_handling"
    REJECTED = "rejected"
    DISPATCHED_TO_OFFICE = "dispatched_to_office"
    IN_FIELD = "in_field"
    COMPLETED = "completed"
    FOLLOW_UP = "follow_up"
    CLOSED = "closed"


class RequestAction(enum.StrEnum):
    RESOLVE_BY_PHONE = "resolve_by_phone"
    SUBMIT = "submit"
    START_REVIEW = "start_review"
    APPROVE = "approve"
    REJECT = "reject"
    RESUBMIT = "resubmit"
    DISPATCH_WORK_ORDER = "dispatch_work_order"
    # The technician declined (拒单): back to the office, which dispatches again.
    RETURN_TO_OFFICE = "return_to_office"
    HANDLE_COMPLAINT = "handle_complaint"
    COMPLETE = "complete"
    START_FOLLOW_UP = "start_follow_up"
    CLOSE = "close"
    REOPEN = "reopen"


class WorkOrderState(enum.StrEnum):
    # Offered to several technicians of the office; the first to accept gets it.
    OFFERED = "offered"
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    NEEDS_PARTS = "needs_parts"
    RETURN_TO_FACTORY = "return_to_factory"
    REASSIGNED = "reassigned"
    DECLINED = "declined"
    DONE = "done"


class WorkOrderAction(enum.StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    SET_ETA = "set_eta"
    ARRIVE = "arrive"
    NEED_PARTS = "need_parts"
    RETURN_TO_FACTORY = "return_to_factory"
    REASSIGN = "reassign"
    COMPLETE = "complete"


class FollowUpState(enum.StrEnum):
    PENDING = "pending"
    RESCHEDULED = "rescheduled"
    COMPLETED = "completed"
    UNREACHABLE = "unreachable"


class FollowUpAction(enum.StrEnum):
    NO_ANSWER = "no_answer"
    RECORD_RESULT = "record_result"


S = TypeVar("S", bound=enum.StrEnum)
A = TypeVar("A", bound=enum.StrEnum)


@dataclass(frozen=True)
class Machine(Generic[S, A]):
    """A transition table; `apply` is the only way to compute a next state."""

    name: str
    table: Mapping[tuple[S, A], S]
    error: type[IllegalTransition]
    terminal: frozenset[S]

    def apply(self, state: S, action: A) -> S:
        try:
            return self.table[(state, action)]
        except KeyError:
            allowed = sorted(a for (s, a) in self.table if s == state)
            raise self.error(
                f"{self.name}: cannot {action} while {state}",
                state=str(state),
                action=str(action),
                allowed=allowed,
            ) from None

    def allowed(self, state: S) -> list[A]:
        return [a for (s, a) in self.table if s == state]


R, RA = RequestState, RequestAction
_COMMON_REQUEST: dict[tuple[RequestState, RequestAction], RequestState] = {
    (R.NEW, RA.RESOLVE_BY_PHONE): R.RESOLVED_BY_PHONE,
    (R.NEW, RA.SUBMIT): R.SUBMITTED,
    (R.REJECTED, RA.RESUBMIT): R.SUBMITTED,
    (R.REJECTED, RA.CLOSE): R.CLOSED,
    (R.DISPATCHED_TO_OFFICE, RA.DISPATCH_WORK_ORDER): R.IN_FIELD,
    (R.IN_FIELD, RA.DISPATCH_WORK_ORDER): R.IN_FIELD,
    (R.IN_FIELD, RA.RETURN_TO_OFFICE): R.DISPATCHED_TO_OFFICE,
    (R.IN_FIELD, RA.COMPLETE): R.COMPLETED,
    (R.COMPLETED, RA.START_FOLLOW_UP): R.FOLLOW_UP,
    (R.FOLLOW_UP, RA.CLOSE): R.CLOSED,
    (R.RESOLVED_BY_PHONE, RA.CLOSE): R.CLOSED,
    (R.RESOLVED_BY_PHONE, RA.REOPEN): R.NEW,
    (R.CLOSED, RA.REOPEN): R.NEW,
}

# 技术科审核: technical staff review, then the request goes to the regional office (办事处).
SERVICE_REQUEST = Machine[RequestState, RequestAction](
    "service request",
    {
        **_COMMON_REQUEST,
        (R.SUBMITTED, RA.START_REVIEW): R.UNDER_REVIEW,
        (R.UNDER_REVIEW, RA.APPROVE): R.DISPATCHED_TO_OFFICE,
        (R.UNDER_REVIEW, RA.REJECT): R.REJECTED,
    },
    IllegalRequestTransition,
    frozenset(),
)

# 投诉: complaints are reviewed by a supervisor, handled by the hotline itself, and go to an
# office only when they need field work.
COMPLAINT = Machine[RequestState, RequestAction](
    "complaint",
    {
        **_COMMON_REQUEST,
        (R.SUBMITTED, RA.START_REVIEW): R.COMPLAINT_REVIEW,
        (R.COMPLAINT_REVIEW, RA.APPROVE): R.COMPLAINT_HANDLING,
        (R.COMPLAINT_REVIEW, RA.REJECT): R.REJECTED,
        (R.COMPLAINT_HANDLING, RA.COMPLETE): R.COMPLETED,
        (R.COMPLAINT_HANDLING, RA.HANDLE_COMPLAINT): R.DISPATCHED_TO_OFFICE,
    },
    IllegalRequestTransition,
    frozenset(),
)


def request_machine(category: str) -> Machine[RequestState, RequestAction]:
    return COMPLAINT if category == Category.COMPLAINT else SERVICE_REQUEST


W, WA = WorkOrderState, WorkOrderAction
_OPEN_WORK = (
    W.OFFERED,
    W.ASSIGNED,
    W.ACCEPTED,
    W.EN_ROUTE,
    W.ON_SITE,
    W.NEEDS_PARTS,
    W.RETURN_TO_FACTORY,
)
_WORKING = (W.ACCEPTED, W.EN_ROUTE, W.ON_SITE, W.NEEDS_PARTS)

# 服务派工单. Parts and return-to-factory (返厂) end in reassignment: the supervisor issues a new
# order and this one is kept, as `reassigned`, with its history. A technician who fetched the
# parts himself may still finish the order.
WORK_ORDER = Machine[WorkOrderState, WorkOrderAction](
    "work order",
    {
        (W.ASSIGNED, WA.ACCEPT): W.ACCEPTED,
        # An offer is taken by a conditional UPDATE (ticketing/offers.py), then recorded here.
        (W.OFFERED, WA.ACCEPT): W.ACCEPTED,
        # 拒单: the office dispatches the request again (a new order).
        (W.ASSIGNED, WA.DECLINE): W.DECLINED,
        # Every technician it was offered to declined.
        (W.OFFERED, WA.DECLINE): W.DECLINED,
        (W.ACCEPTED, WA.SET_ETA): W.EN_ROUTE,
        (W.EN_ROUTE, WA.SET_ETA): W.EN_ROUTE,
        (W.ACCEPTED, WA.ARRIVE): W.ON_SITE,
        (W.EN_ROUTE, WA.ARRIVE): W.ON_SITE,
        (W.NEEDS_PARTS, WA.ARRIVE): W.ON_SITE,
        (W.ACCEPTED, WA.NEED_PARTS): W.NEEDS_PARTS,
        (W.EN_ROUTE, WA.NEED_PARTS): W.NEEDS_PARTS,
        (W.ON_SITE, WA.NEED_PARTS): W.NEEDS_PARTS,
        (W.ON_SITE, WA.RETURN_TO_FACTORY): W.RETURN_TO_FACTORY,
        (W.NEEDS_PARTS, WA.RETURN_TO_FACTORY): W.RETURN_TO_FACTORY,
        **{(s, WA.REASSIGN): W.REASSIGNED for s in _OPEN_WORK},
        **{(s, WA.COMPLETE): W.DONE for s in _WORKING},
    },
    IllegalWorkOrderTransition,
    frozenset({W.REASSIGNED, W.DECLINED, W.DONE}),
)

OPEN_WORK_ORDER_STATES = frozenset(_OPEN_WORK)
# Not yet accepted (接单): the SLA's accept timer runs, for an offer as for an assignment.
AWAITING_ACCEPT = (W.ASSIGNED.value, W.OFFERED.value)

FOLLOW_UP = Machine[FollowUpState, FollowUpAction](
    "follow-up",
    {
        (FollowUpState.PENDING, FollowUpAction.NO_ANSWER): FollowUpState.RESCHEDULED,
        (FollowUpState.RESCHEDULED, FollowUpAction.NO_ANSWER): FollowUpState.RESCHEDULED,
        (FollowUpState.PENDING, FollowUpAction.RECORD_RESULT): FollowUpState.COMPLETED,
        (FollowUpState.RESCHEDULED, FollowUpAction.RECORD_RESULT): FollowUpState.COMPLETED,
    },
    IllegalFollowUpTransition,
    frozenset({FollowUpState.COMPLETED, FollowUpState.UNREACHABLE}),
)


def follow_up_after_no_answer(
    state: FollowUpState, attempts: int, max_attempts: int
) -> tuple[FollowUpState, int]:
    """改签: an unanswered call-back is rebooked until `max_attempts` calls went unanswered."""
    FOLLOW_UP.apply(state, FollowUpAction.NO_ANSWER)
    attempts += 1
    if attempts >= max_attempts:
        return FollowUpState.UNREACHABLE, attempts
    return FollowUpState.RESCHEDULED, attempts


# Labels for the desktop and for SMS, in the seed's words. Keyed per enum: two enums may share
# a value ("completed") with different meanings.
LABELS_ZH: dict[type[enum.StrEnum], dict[str, str]] = {
    RequestState: {
        R.NEW: "新建",
        R.RESOLVED_BY_PHONE: "电话解决",
        R.SUBMITTED: "已提交",
        R.UNDER_REVIEW: "技术科审核中",
        R.COMPLAINT_REVIEW: "投诉审核中",
        R.COMPLAINT_HANDLING: "投诉处理中",
        R.REJECTED: "审核驳回",
        R.DISPATCHED_TO_OFFICE: "已转办事处",
        R.IN_FIELD: "现场服务中",
        R.COMPLETED: "已完成",
        R.FOLLOW_UP: "回访中",
        R.CLOSED: "已关闭",
    },
    WorkOrderState: {
        W.OFFERED: "待抢单",
        W.ASSIGNED: "已派工",
        W.ACCEPTED: "已接单",
        W.EN_ROUTE: "在途",
        W.ON_SITE: "已到达",
        W.NEEDS_PARTS: "待配件",
        W.RETURN_TO_FACTORY: "返厂维修",
        W.REASSIGNED: "已改派",
        W.DECLINED: "已拒单",
        W.DONE: "已完工",
    },
    FollowUpState: {
        FollowUpState.PENDING: "待回访",
        FollowUpState.RESCHEDULED: "已改签",
        FollowUpState.COMPLETED: "已回访",
        FollowUpState.UNREACHABLE: "无应答",
    },
    Category: {
        Category.REPAIR: "报修",
        Category.COMPLAINT: "投诉",
        Category.CONSULTATION: "咨询",
        Category.PARTS: "配件",
    },
    Priority: {
        Priority.URGENT: "紧急",
        Priority.HIGH: "高",
        Priority.NORMAL: "普通",
        Priority.LOW: "低",
    },
}


def label_zh(kind: type[enum.StrEnum], value: str) -> str:
    return LABELS_ZH.get(kind, {}).get(value, value)
