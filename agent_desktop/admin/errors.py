"""Refusals specific to administration."""

from __future__ import annotations

from crm_core.errors import HotlineError


class AdminRefused(HotlineError):
    """A change that would leave the system unusable (last admin, own account...)."""

    status = 409
    error_id = "admin_change_refused"
