"""Fixtures for the webhook tests: a real receiver on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hook_receiver import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()
