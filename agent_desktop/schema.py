"""The whole schema: every package's models and migration folders, wired in one place.

A package that owns tables has `<package>/models.py` (on crm_core's Base) and
`<package>/migrations/` (revisions branching off crm_core's first one).
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from crm_core import migrate

PACKAGES = (
    "crm_core",
    "cti",
    "ticketing",
    "recordings",
    "sms_gateway",
    "webhooks",
    "agent_desktop",
)


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None, name
    return Path(spec.origin).parent


def load_all_models() -> None:
    """Import every models module, so Base.metadata knows every table."""
    for name in PACKAGES:
        if (_package_dir(name) / "models.py").exists():
            importlib.import_module(f"{name}.models")


def register_migrations() -> None:
    for name in PACKAGES[1:]:
        folder = _package_dir(name) / "migrations"
        if folder.is_dir():
            migrate.register_locations(folder)


def prepare() -> None:
    load_all_models()
    register_migrations()
