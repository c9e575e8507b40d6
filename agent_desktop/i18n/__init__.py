"""UI catalogues: msgids are English, zh_CN (the default) translates them all.

The .po files are read at start-up with Babel's parser, so nothing has to be compiled at
install time and no network is needed. Extract new strings with
`pybabel extract -F agent_desktop/i18n/babel.cfg -o messages.pot agent_desktop` and merge
them with `pybabel update -i messages.pot -d agent_desktop/i18n`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

LOCALES = ("zh_CN", "en")
DEFAULT = "zh_CN"
HERE = Path(__file__).parent
Translate = Callable[..., str]


@lru_cache(maxsize=len(LOCALES))
def catalogue(locale: str) -> dict[str, str]:
    """msgid → msgstr for one locale; untranslated and fuzzy entries are left out."""
    path = HERE / locale / "LC_MESSAGES" / "messages.po"
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        parsed = read_po(handle, locale=locale)
    return {
        str(m.id): str(m.string)
        for m in parsed
        if m.id and isinstance(m.id, str) and m.string and not m.fuzzy
    }


def translator(locale: str) -> Translate:
    table = catalogue(locale if locale in LOCALES else DEFAULT)

    def translate(message: str, **values: Any) -> str:
        text = table.get(message, message)
        return text.format(**values) if values else text

    return translate


def choose(requested: str | None, default: str) -> str:
    return requested if requested in LOCALES else default
