"""Request signatures of the two Chinese providers, both public algorithms:

- Aliyun RPC (signature version 1.0): HMAC-SHA1, keyed with AccessKeySecret + "&", over
  "POST&%2F&" + percent-encode(the sorted, percent-encoded canonical query); base64.
- Tencent Cloud TC3-HMAC-SHA256: a canonical request (method, path, headers content-type,
  host and x-tc-action, the body's SHA-256) hashed into a string to sign, keyed by a key
  derived from the secret, the UTC date, the service and "tc3_request".

The fake providers in the tests verify with these same functions over what they received.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

TC3 = "TC3-HMAC-SHA256"
TC3_SIGNED_HEADERS = "content-type;host;x-tc-action"
JSON_TYPE = "application/json; charset=utf-8"


def percent(value: str) -> str:
    """RFC 3986 encoding as Aliyun specifies it: only A-Z a-z 0-9 - _ . ~ stay as they are."""
    return quote(value, safe="~")


def aliyun_canonical(params: Mapping[str, str]) -> str:
    return "&".join(
        f"{percent(k)}={percent(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )


def aliyun_signature(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    to_sign = f"{method}&{percent('/')}&{percent(aliyun_canonical(params))}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _hmac256(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def tc3_signature(
    secret_key: str, host: str, action: str, payload: bytes, timestamp: int, service: str
) -> str:
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical = "\n".join(
        (
            "POST",
            "/",
            "",
            f"content-type:{JSON_TYPE}\nhost:{host}\nx-tc-action:{action.lower()}\n",
            TC3_SIGNED_HEADERS,
            hashlib.sha256(payload).hexdigest(),
        )
    )
    scope = f"{date}/{service}/tc3_request"
    to_sign = f"{TC3}\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = _hmac256(_hmac256(_hmac256(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    host: str,
    action: str,
    payload: bytes,
    timestamp: int,
    service: str = "sms",
) -> str:
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    signature = tc3_signature(secret_key, host, action, payload, timestamp, service)
    return (
        f"{TC3} Credential={secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders={TC3_SIGNED_HEADERS}, Signature={signature}"
    )
