"""Why a whole file cannot be imported (a single bad row is reported, never raised)."""

from __future__ import annotations

from crm_core.errors import HotlineError


class ImportFileError(HotlineError):
    """The file as a whole is unusable: empty, binary, undecodable, no such sheet."""

    status = 422
    error_id = "import_file_invalid"


class MissingColumn(HotlineError):
    status = 422
    error_id = "import_column_missing"


class MappingFileError(HotlineError):
    status = 422
    error_id = "import_mapping_invalid"


class UnknownImportKind(HotlineError):
    status = 404
    error_id = "import_kind_unknown"
