"""Stored codes → English msgids, shared by the pages of several features; the templates
translate them with _().

Ticket labels are keyed per kind, because two kinds share a code with different meanings
("completed"). The Chinese wording follows ticketing.states.LABELS_ZH (the seed's words).
"""

from __future__ import annotations

DISPOSITION_LABELS = {
    "resolved": "Resolved",
    "service_request": "Service request opened",
    "consultation": "Consultation",
    "complaint": "Complaint",
    "callback": "Call back later",
    "wrong_number": "Wrong number",
    "other": "Other",
}
CATEGORY_LABELS = {
    "repair": "Repair",
    "complaint": "Complaint",
    "consultation": "Consultation",
    "parts": "Parts",
}
PRIORITY_LABELS = {"urgent": "Urgent", "high": "High", "normal": "Normal", "low": "Low"}
TICKET_LABELS: dict[str, dict[str, str]] = {
    "request_state": {
        "new": "New",
        "resolved_by_phone": "Resolved by phone",
        "submitted": "Submitted",
        "under_review": "Under technical review",
        "complaint_review": "Complaint under review",
        "complaint_handling": "Complaint being handled",
        "rejected": "Rejected",
        "dispatched_to_office": "Sent to office",
        "in_field": "Field service",
        "completed": "Work completed",
        "follow_up": "Follow-up",
        "closed": "Closed",
    },
    "order_state": {
        "offered": "On offer",
        "assigned": "Assigned",
        "accepted": "Accepted",
        "en_route": "On the way",
        "on_site": "On site",
        "needs_parts": "Needs parts",
        "return_to_factory": "Return to factory",
        "reassigned": "Reassigned",
        "declined": "Declined",
        "done": "Done",
    },
    "follow_up_state": {
        "pending": "To call back",
        "rescheduled": "Rebooked",
        "completed": "Called back",
        "unreachable": "Unreachable",
    },
    "category": {
        "repair": "Repair",
        "complaint": "Complaint",
        "consultation": "Consultation",
        "parts": "Parts",
    },
    "priority": {"urgent": "Urgent", "high": "High", "normal": "Normal", "low": "Low"},
    "channel": {"phone": "Phone call", "sms": "SMS", "web": "Web"},
    "action": {
        "create": "Created",
        "resolve_by_phone": "Resolve by phone",
        "submit": "Submit for review",
        "start_review": "Start review",
        "approve": "Approve",
        "reject": "Reject",
        "resubmit": "Resubmit",
        "dispatch_work_order": "Work order dispatched",
        "handle_complaint": "Send complaint to office",
        "complete": "Complete",
        "start_follow_up": "Follow-up started",
        "close": "Close",
        "reopen": "Reopen",
        "dispatch": "Dispatched",
        "accept": "Accepted",
        "decline": "Declined",
        "offer": "Offered to several technicians",
        "return_to_office": "Back to the office",
        "set_eta": "ETA given",
        "arrive": "Arrived",
        "need_parts": "Needs parts",
        "return_to_factory": "Return to factory",
        "reassign": "Reassign",
        "no_answer": "No answer",
        "record_result": "Satisfaction recorded",
    },
    # What the technician wrote on the mobile page (ticketing/mobile_view.py).
    "field_note": {
        "note": "Note",
        "parts": "Parts used",
        "decline": "Reason for declining",
        "complete": "Result",
    },
    "entry_kind": {
        "transition": "Status change",
        "call": "Call",
        "recording": "Recording",
        "sms_out": "SMS sent",
        "sms_in": "SMS received",
    },
    "entity": {
        "request": "Service request",
        "work_order": "Work order",
        "follow_up": "Follow-up call",
        "call": "Call",
        "sms": "SMS",
    },
    "sms_status": {
        "pending": "Waiting to send",
        "sending": "Sending",
        "queued": "Queued at provider",
        "sent": "Sent",
        "delivered": "Delivered",
        "undelivered": "Undelivered",
        "failed": "Failed",
        "applied": "Command applied",
        "unparseable": "Not a command",
        "unknown_sender": "Unknown sender",
    },
    "sla_kind": {
        "response": "Response overdue",
        "resolution": "Resolution overdue",
        "dispatch": "Dispatch overdue",
        "accept": "Acceptance overdue",
        "follow_up": "Follow-up overdue",
    },
}


def all_msgids() -> set[str]:
    return {m for table in TICKET_LABELS.values() for m in table.values()}
