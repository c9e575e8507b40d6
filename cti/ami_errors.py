"""Typed AMI failures. Each says whether the action may have reached Asterisk."""

from __future__ import annotations

from crm_core.errors import HotlineError


class AmiError(HotlineError):
    status = 502
    error_id = "ami_error"


class AmiUnknownServer(AmiError):
    status = 404
    error_id = "ami_unknown_server"


class AmiNotConnected(AmiError):
    """The action was not sent: the link is down (or logging in). Safe to retry later."""

    status = 503
    error_id = "ami_not_connected"


class AmiConnectionLost(AmiError):
    """The link dropped after the action was sent: Asterisk may or may not have run it."""

    status = 503
    error_id = "ami_connection_lost"


class AmiActionTimeout(AmiError):
    """No (complete) reply in time. The action may have run: never blindly re-send it."""

    status = 504
    error_id = "ami_action_timeout"


class AmiActionFailed(AmiError):
    """Asterisk answered ``Response: Error`` (the message says why)."""

    status = 502
    error_id = "ami_action_failed"


class AmiInvalidAction(AmiError):
    """A header name or value would break the frame (CR/LF injection, empty name)."""

    status = 422
    error_id = "ami_invalid_action"


class AmiLoginFailed(AmiError):
    status = 502
    error_id = "ami_login_failed"
