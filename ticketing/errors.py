"""Ticketing failures: one class per failure, each with an HTTP status and a stable error_id."""

from __future__ import annotations

from crm_core.errors import HotlineError, NotFound, ValidationError


class IllegalTransition(HotlineError):
    """An action that the current state does not allow. Nothing is changed."""

    status = 409
    error_id = "illegal_transition"


class IllegalRequestTransition(IllegalTransition):
    error_id = "illegal_service_request_transition"


class IllegalWorkOrderTransition(IllegalTransition):
    error_id = "illegal_work_order_transition"


class IllegalFollowUpTransition(IllegalTransition):
    error_id = "illegal_follow_up_transition"


class ServiceRequestNotFound(NotFound):
    error_id = "service_request_not_found"


class WorkOrderNotFound(NotFound):
    error_id = "work_order_not_found"


class FollowUpNotFound(NotFound):
    error_id = "follow_up_not_found"


class ReasonRequired(ValidationError):
    error_id = "reason_required"


class InvalidScore(ValidationError):
    error_id = "invalid_satisfaction_score"


class NotYourWorkOrder(HotlineError):
    """A technician acted on a work order assigned to someone else."""

    status = 403
    error_id = "not_your_work_order"


class UnknownSender(HotlineError):
    """An SMS command from a number that belongs to no technician."""

    status = 403
    error_id = "unknown_sms_sender"


class WorkOrderAmbiguous(HotlineError):
    """No order number given and the technician has zero or several open orders."""

    status = 409
    error_id = "work_order_ambiguous"


class NotAllowed(HotlineError):
    """The user's role or region does not allow this action on this object."""

    status = 403
    error_id = "ticketing_forbidden"


class NoAssignee(HotlineError):
    status = 409
    error_id = "no_follow_up_representative"


class WorkOrderTaken(HotlineError):
    """An offered order another technician accepted first (or the offer was withdrawn)."""

    status = 409
    error_id = "work_order_taken"


class FieldLinkInvalid(HotlineError):
    """A mobile-page link that was not made by us, or was altered."""

    status = 403
    error_id = "field_link_invalid"


class FieldLinkExpired(HotlineError):
    status = 410
    error_id = "field_link_expired"


class UnknownFieldAction(ValidationError):
    error_id = "unknown_field_action"


class ActionIdReused(HotlineError):
    """A client action id already used for a different action: never applied twice, never
    silently mixed up."""

    status = 409
    error_id = "field_action_id_reused"


class InvalidImage(HotlineError):
    status = 415
    error_id = "invalid_image"


class UploadTooLarge(HotlineError):
    status = 413
    error_id = "upload_too_large"


class SignatureRequired(ValidationError):
    error_id = "signature_required"
