"""Find the Debian mirror this machine already uses, from its own apt configuration.

The repository never names a package host: the mirror is read at run time from the deb822
``URIs:`` lines in /etc/apt/sources.list.d/*.sources, or from ``deb`` lines in
/etc/apt/sources.list. Security and update archives are skipped: debootstrap needs the main
archive, which carries sid.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from asterisk_conf.errors import PbxPrerequisiteMissing

APT_DIR = Path("/etc/apt")


def _is_main_archive(uri: str) -> bool:
    return uri.startswith(("http://", "https://")) and "security" not in uri


def _deb822_uris(text: str) -> Iterable[str]:
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith(("#", " ")):
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
        if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
            yield from fields.get("uris", "").split()


def _one_line_uris(text: str) -> Iterable[str]:
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        # Skip an options block such as [signed-by=...] before the URI.
        rest = words[1:]
        while rest and rest[0].startswith("["):
            closing = next((i for i, w in enumerate(rest) if w.endswith("]")), 0)
            rest = rest[closing + 1 :]
        if rest:
            yield rest[0]


def candidate_uris(apt_dir: Path = APT_DIR) -> list[str]:
    uris: list[str] = []
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        uris.extend(_deb822_uris(path.read_text(encoding="utf-8", errors="replace")))
    lists = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in lists:
        if path.is_file():
            uris.extend(_one_line_uris(path.read_text(encoding="utf-8", errors="replace")))
    return uris


def debian_mirror(apt_dir: Path = APT_DIR) -> str:
    for uri in candidate_uris(apt_dir):
        if _is_main_archive(uri):
            return uri.rstrip("/")
    raise PbxPrerequisiteMissing(
        f"no Debian mirror found in {apt_dir}/sources.list.d/*.sources (URIs:) or "
        f"{apt_dir}/sources.list (deb lines); configure apt so that `apt-get update` works, "
        "then run `hotline pbx install` again"
    )
