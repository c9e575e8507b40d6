"""Fixtures for the recordings tests; helpers live in rec_world.py and rec_audio.py."""

from rec_world import rec_client, rec_world

__all__ = ["rec_client", "rec_world"]
