"""Which column holds which field: header aliases (Chinese and English) and mapping files.

Headers are compared after normalising: full-width folded (NFKC), lower case, without
spaces and the punctuation people put around headers ("客户名称*", "车架号(VIN)",
"Phone No."). A TOML mapping file names the headers of one file explicitly:

    [columns]
    "客户全称" = "name"
    "移动电话" = "mobile"
    "备注" = ""            # ignore this column, without a warning
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crm_core.importing.errors import MappingFileError, MissingColumn

_PUNCTUATION = re.compile(r"[\s*:()\[\]【】/\\\-_.#·、]+")


def normalise_header(text: str) -> str:
    return _PUNCTUATION.sub("", unicodedata.normalize("NFKC", text).lower())


@dataclass
class ColumnMap:
    """field → 0-based column index, plus what was not understood."""

    columns: dict[str, int]
    headers: list[str]
    unknown: list[str] = field(default_factory=list)

    def header_of(self, field_name: str) -> str:
        return self.headers[self.columns[field_name]]

    def values(self, cells: Sequence[str]) -> dict[str, str]:
        width = len(cells)
        return {
            name: cells[index].strip()
            for name, index in self.columns.items()
            if index < width and cells[index].strip()
        }


def load_mapping_file(path: Path, fields: Sequence[str]) -> dict[str, str]:
    """header → field from a TOML file; errors name the file and the bad entry."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise MappingFileError(f"no such mapping file: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MappingFileError(f"mapping file {path.name} is not valid TOML: {exc}") from None
    columns = data.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise MappingFileError(
            f'mapping file {path.name} needs a [columns] table of "header" = "field" lines'
        )
    known = set(fields)
    out: dict[str, str] = {}
    for header, target in columns.items():
        if not isinstance(target, str) or (target and target not in known):
            raise MappingFileError(
                f"mapping file {path.name}: {header!r} = {target!r} is not a field; "
                f'fields: {", ".join(fields)} (or "" to ignore the column)',
                header=header,
            )
        out[header] = target
    return out


def map_columns(
    headers: Sequence[str],
    aliases: Mapping[str, Sequence[str]],
    required: Sequence[Sequence[str]],
    overrides: Mapping[str, str] | None = None,
) -> ColumnMap:
    """Find each field's column; MissingColumn names what a required field could be called."""
    by_alias = {normalise_header(a): name for name, names in aliases.items() for a in names}
    by_alias.update({normalise_header(name): name for name in aliases})
    explicit = {normalise_header(h): f for h, f in (overrides or {}).items()}
    found = ColumnMap({}, list(headers))
    for index, header in enumerate(headers):
        if not header:
            continue
        key = normalise_header(header)
        target = explicit[key] if key in explicit else by_alias.get(key)
        if target == "":
            continue
        if target is None:
            found.unknown.append(header)
        elif target in found.columns:
            raise MissingColumn(
                f"columns {found.header_of(target)!r} and {header!r} both mean {target!r}; "
                "rename one or map it in a mapping file",
                field=target,
            )
        else:
            found.columns[target] = index
    for group in required:
        if not any(name in found.columns for name in group):
            wanted = " or ".join(f"{', '.join(list(aliases[n])[:3])} ({n})" for n in group)
            raise MissingColumn(
                f"the file has no column for {wanted}; its columns are: "
                + ", ".join(h for h in headers if h),
                fields=list(group),
            )
    return found
