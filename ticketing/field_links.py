"""Signed links to the technician's mobile page: bound to one technician and one work order,
expiring, and short enough for an SMS and for a provider template variable (≤ 35 characters).

A token is base64url(order id, technician id, expiry as 32-bit big-endian integers, then the
first 12 bytes of HMAC-SHA256 over those 12 bytes): 32 characters. The key is derived from
the `field_link_secret` setting, so the link secret is never the HMAC key of anything else.
A link proves who is asking only together with the database: every action re-checks that
the order still belongs to (or is still offered to) that technician.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ticketing.errors import FieldLinkExpired, FieldLinkInvalid

_PAYLOAD = struct.Struct(">III")
_MAC_BYTES = 12
TOKEN_LENGTH = 32  # characters: (12 + 12) bytes in base64url, no padding
PATH = "/m/"


@dataclass(frozen=True)
class LinkClaim:
    work_order_id: int
    technician_id: int
    expires_at: datetime


@dataclass(frozen=True)
class FieldLinks:
    secret: str
    base_url: str
    max_age: timedelta

    def _key(self) -> bytes:
        return hashlib.sha256(b"hotline field link v1\0" + self.secret.encode()).digest()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key(), payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def token(self, work_order_id: int, technician_id: int, now: datetime) -> str:
        expires = int((now + self.max_age).timestamp())
        payload = _PAYLOAD.pack(work_order_id, technician_id, expires)
        return base64.urlsafe_b64encode(payload + self._mac(payload)).decode().rstrip("=")

    def url(self, work_order_id: int, technician_id: int, now: datetime) -> str:
        return self.base_url.rstrip("/") + PATH + self.token(work_order_id, technician_id, now)

    def verify(self, token: str, now: datetime) -> LinkClaim:
        """The claim of a genuine, unexpired token; FieldLinkInvalid / FieldLinkExpired."""
        if len(token) != TOKEN_LENGTH or not token.isascii():
            raise FieldLinkInvalid("this link is not valid")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise FieldLinkInvalid("this link is not valid") from None
        payload, mac = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise FieldLinkInvalid("this link is not valid")
        order_id, technician_id, expires = _PAYLOAD.unpack(payload)
        expires_at = datetime.fromtimestamp(expires, UTC)
        if expires_at <= now:
            raise FieldLinkExpired("this link has expired; ask the office for a new one")
        return LinkClaim(order_id, technician_id, expires_at)
