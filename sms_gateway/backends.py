"""The small typed interface every SMS provider implements, and the local default.

A backend sends one message and, for crash recovery, says whether a message was already
accepted (so a send interrupted after the provider took it is not repeated).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingSms:
    id: int
    key: str
    to: str
    body: str
    first_attempt_at: datetime
    # The message kind and its parameters (None for a free text with no template).
    template: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Accepted:
    sid: str
    status: str


class SmsBackend(Protocol):
    name: str

    async def send(self, message: OutgoingSms) -> Accepted:
        """Hand the message to the provider; raise SendError when it is not accepted."""
        ...

    async def find_sent(self, message: OutgoingSms) -> Accepted | None:
        """The provider's record of this message, if an earlier attempt got through."""
        ...

    async def close(self) -> None: ...


class LocalBackend:
    """The embedded default: the outbox is the destination. Logs the text and reports it
    delivered; the developer page lists every message."""

    name = "local"

    async def send(self, message: OutgoingSms) -> Accepted:
        log.info("SMS (local outbox) to %s: %s", message.to, message.body)
        return Accepted(self.sid_for(message), "delivered")

    async def find_sent(self, message: OutgoingSms) -> Accepted | None:
        # Sending is only logging, so a repeat after a crash is harmless; no lookup needed.
        return None

    async def close(self) -> None:
        return None

    @staticmethod
    def sid_for(message: OutgoingSms) -> str:
        return "LO" + hashlib.sha256(message.key.encode()).hexdigest()[:32]
