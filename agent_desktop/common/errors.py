"""Login and access failures, each with its HTTP status and stable error_id."""

from __future__ import annotations

from crm_core.errors import HotlineError


class NotAuthenticated(HotlineError):
    status = 401
    error_id = "not_authenticated"


class BadCredentials(HotlineError):
    status = 401
    error_id = "bad_credentials"


class AccountLocked(HotlineError):
    # 423 Locked: the account exists and is temporarily closed to this source.
    status = 423
    error_id = "account_locked"


class TooManyAttempts(HotlineError):
    status = 429
    error_id = "too_many_attempts"


class IpNotAllowed(HotlineError):
    status = 403
    error_id = "ip_not_allowed"


class Forbidden(HotlineError):
    status = 403
    error_id = "forbidden"


class CsrfFailed(HotlineError):
    status = 403
    error_id = "csrf_failed"


class OriginRefused(HotlineError):
    status = 403
    error_id = "origin_refused"


class PasswordChangeRequired(HotlineError):
    status = 403
    error_id = "password_change_required"


class RateLimited(HotlineError):
    # The reply carries Retry-After (server.error_middleware reads details["retry_after"]).
    status = 429
    error_id = "rate_limited"


class TokenReadOnly(HotlineError):
    status = 403
    error_id = "token_read_only"
