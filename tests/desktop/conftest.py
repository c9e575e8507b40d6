"""Fixtures for the desktop tests; the helpers themselves live in desk_world.py (a unique
module name, so `import` never picks up another folder's conftest)."""

from desk_world import client, desk_settings, world

__all__ = ["client", "desk_settings", "world"]
