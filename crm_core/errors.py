"""One exception class per failure, each with an HTTP status and a stable error_id.

They are mapped to HTTP, WebSocket and CLI replies in exactly one place per edge.
"""

from __future__ import annotations

from typing import Any, ClassVar


class HotlineError(Exception):
    status: ClassVar[int] = 400
    error_id: ClassVar[str] = "hotline_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error_id": self.error_id, "message": self.message, **self.details}


class ValidationError(HotlineError):
    status = 422
    error_id = "validation_failed"


class InvalidPhoneNumber(ValidationError):
    error_id = "invalid_phone_number"


class FieldTooLong(ValidationError):
    error_id = "field_too_long"


class RequiredFieldMissing(ValidationError):
    error_id = "required_field_missing"


class NotFound(HotlineError):
    status = 404
    error_id = "not_found"


class DuplicateCode(HotlineError):
    status = 409
    error_id = "duplicate_code"


class PossibleDuplicate(HotlineError):
    status = 409
    error_id = "possible_duplicate"


class HistoryError(HotlineError):
    status = 409
    error_id = "history_restore_refused"


class MergeRefused(HotlineError):
    status = 409
    error_id = "merge_refused"


class BackupFailed(HotlineError):
    status = 500
    error_id = "backup_failed"


class ToolMissing(HotlineError):
    status = 500
    error_id = "tool_missing"
