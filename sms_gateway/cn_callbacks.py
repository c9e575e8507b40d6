"""The Chinese providers' callbacks (delivery receipts and replies), parsed into our terms.

Neither Aliyun's HTTP push nor Tencent Cloud's callbacks carry a signature; both are pushed
as JSON to the URL configured in the provider's console. What the edge verifies instead (see
docs/sms.md): a secret path token in that URL, a freshness window on the provider's own
timestamp in each record, and that a message id is processed once.

- Aliyun SmsReport: [{"phone_number", "send_time", "report_time", "success", "err_code",
  "err_msg", "sms_size", "biz_id", "out_id"}]; SmsUp: [{"phone_number", "send_time",
  "content", "sign_name", "dest_code", "sequence_id"}]. Times are Beijing time.
- Tencent status: [{"user_receive_time", "nationcode", "mobile", "report_status", "errmsg",
  "description", "sid"}]; reply: {"extend", "mobile", "nationcode", "sign", "text", "time"}
  (one object, `time` in Unix seconds).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sms_gateway.errors import MalformedCallback

CHINA = ZoneInfo("Asia/Shanghai")
FUTURE_SKEW = timedelta(minutes=5)
ALIYUN_OK = {"code": 0, "msg": "成功"}
TENCENT_OK = {"result": 0, "errmsg": "OK"}


@dataclass(frozen=True)
class Receipt:
    sid: str
    out_id: str | None
    status: str
    error_code: str | None
    at: datetime
    raw: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    sid: str
    sender: str
    body: str
    at: datetime


def token_ok(expected: str, given: str) -> bool:
    """Constant-time; an unset token accepts nothing."""
    return bool(expected) and hmac.compare_digest(expected.encode(), given.encode())


def is_stale(at: datetime, now: datetime, max_age: timedelta) -> bool:
    return at < now - max_age or at > now + FUTURE_SKEW


def _china_time(value: Any) -> datetime:
    try:
        return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    except ValueError:
        raise MalformedCallback(f"not a provider time: {value!r}") from None


def _records(data: Any) -> list[dict[str, Any]]:
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(item, dict) for item in items):
        raise MalformedCallback("expected a JSON object or a list of objects")
    return items


def _field(item: dict[str, Any], name: str) -> str:
    value = item.get(name)
    if value is None or str(value) == "":
        raise MalformedCallback(f"missing field {name}")
    return str(value)


def aliyun_receipts(data: Any) -> list[Receipt]:
    return [
        Receipt(
            sid=_field(item, "biz_id"),
            out_id=str(item["out_id"]) if item.get("out_id") else None,
            status="delivered" if item.get("success") is True else "undelivered",
            error_code=str(item.get("err_code") or "") or None,
            at=_china_time(_field(item, "report_time")),
            raw=item,
        )
        for item in _records(data)
    ]


def aliyun_replies(data: Any) -> list[Reply]:
    return [
        Reply(
            sid=f"aliyun:{_field(item, 'sequence_id')}",
            sender=_field(item, "phone_number"),
            body=str(item.get("content", "")),
            at=_china_time(_field(item, "send_time")),
        )
        for item in _records(data)
    ]


def tencent_receipts(data: Any) -> list[Receipt]:
    return [
        Receipt(
            sid=_field(item, "sid"),
            out_id=None,
            status="delivered" if item.get("report_status") == "SUCCESS" else "undelivered",
            error_code=str(item.get("errmsg") or "") or None,
            at=_china_time(_field(item, "user_receive_time")),
            raw=item,
        )
        for item in _records(data)
    ]


def tencent_replies(data: Any) -> list[Reply]:
    replies = []
    for item in _records(data):
        number = f"+{_field(item, 'nationcode')}{_field(item, 'mobile')}"
        text, sent = str(item.get("text", "")), _field(item, "time")
        if not sent.isdigit():
            raise MalformedCallback(f"not a Unix time: {sent!r}")
        # Tencent gives a reply no id: sender, time and text together identify it.
        digest = hashlib.sha256(f"{number}|{sent}|{text}".encode()).hexdigest()[:40]
        at = datetime.fromtimestamp(int(sent), UTC)
        replies.append(Reply(sid=f"tencent:{digest}", sender=number, body=text, at=at))
    return replies
