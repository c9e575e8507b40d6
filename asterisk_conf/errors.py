"""PBX failures, one class per failure, each with a stable error_id for the CLI and HTTP edges."""

from __future__ import annotations

from crm_core.errors import HotlineError


class PbxError(HotlineError):
    status = 500
    error_id = "pbx_error"


class PbxNotInstalled(PbxError):
    error_id = "pbx_not_installed"


class PbxInstallFailed(PbxError):
    error_id = "pbx_install_failed"


class PbxPrerequisiteMissing(PbxError):
    error_id = "pbx_prerequisite_missing"


class PbxConfigInvalid(PbxError):
    status = 422
    error_id = "pbx_config_invalid"


class PbxPortInUse(PbxError):
    status = 409
    error_id = "pbx_port_in_use"


class PbxNotRunning(PbxError):
    status = 409
    error_id = "pbx_not_running"


class PbxAlreadyRunning(PbxError):
    status = 409
    error_id = "pbx_already_running"


class PbxStartFailed(PbxError):
    error_id = "pbx_start_failed"
