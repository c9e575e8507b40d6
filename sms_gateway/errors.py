"""SMS failures, each with an HTTP status and a stable error_id."""

from __future__ import annotations

from crm_core.errors import HotlineError, ValidationError


class UnknownTemplate(HotlineError):
    status = 500
    error_id = "sms_unknown_template"


class CommandParseError(ValidationError):
    """A technician's reply that is not a command; the sender gets the syntax by SMS."""

    error_id = "sms_command_unparseable"


class ForgedWebhook(HotlineError):
    status = 403
    error_id = "sms_signature_invalid"


class SendError(Exception):
    """A provider refused or failed a send. `permanent` means retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool, code: str | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class ReplayedCallback(HotlineError):
    """A provider callback that is too old, or whose message id was already processed."""

    status = 403
    error_id = "sms_callback_replayed"


class MalformedCallback(ValidationError):
    error_id = "sms_callback_malformed"
