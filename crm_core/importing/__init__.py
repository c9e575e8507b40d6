"""Customer-data import from CSV and XLSX files (`hotline import`, /admin/import).

The pipeline: `reading` turns a file into numbered rows of text cells, `mapping` finds which
column holds which field, a kind (`kinds`: customers, contacts, vehicles, or one another
package registers) validates each row and writes whole batches, `report` counts and keeps
the refused rows, `runner` drives it all. See docs/import.md.
"""

from __future__ import annotations

# The built-in kinds register themselves when imported.
from crm_core.importing import contacts, customers, vehicles
from crm_core.importing.errors import ImportFileError, MappingFileError, MissingColumn
from crm_core.importing.kinds import ImportKind, get_kind, kind_names, register_kind
from crm_core.importing.report import ImportReport, Outcome
from crm_core.importing.runner import ImportOptions, run_import

__all__ = [
    "ImportFileError",
    "ImportKind",
    "ImportOptions",
    "ImportReport",
    "MappingFileError",
    "MissingColumn",
    "Outcome",
    "contacts",
    "customers",
    "get_kind",
    "kind_names",
    "register_kind",
    "run_import",
    "vehicles",
]
