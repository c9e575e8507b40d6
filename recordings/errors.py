"""Failures of the recordings package, each with an HTTP status and a stable error_id."""

from __future__ import annotations

from crm_core.errors import HotlineError


class RecordingNotFound(HotlineError):
    status = 404
    error_id = "recording_not_found"


class RecordingForbidden(HotlineError):
    status = 403
    error_id = "recording_forbidden"


class RecordingUnavailable(HotlineError):
    """The row exists but there is nothing to play: quarantined, purged, not ingested yet."""

    status = 409
    error_id = "recording_unavailable"


class BrokenRecording(HotlineError):
    """A truncated or corrupt WAV: quarantined, never marked complete."""

    status = 422
    error_id = "recording_corrupt"


class DiskFull(HotlineError):
    """Managed storage has no room: reported and retried; nothing is deleted."""

    status = 507
    error_id = "recordings_disk_full"


class QaInvalid(HotlineError):
    status = 422
    error_id = "qa_review_invalid"


class QaConflict(HotlineError):
    """A review was already amended, or the recording is not reviewable."""

    status = 409
    error_id = "qa_review_conflict"


class PauseFailed(HotlineError):
    status = 409
    error_id = "recording_pause_failed"


class NoLiveCall(HotlineError):
    status = 409
    error_id = "no_live_call"
