"""Aliyun SMS (Dysmsapi 2017-05-25), spoken directly over HTTP with aiohttp and the RPC
signature (sms_gateway.cn_signing).

Sending: `SendSms` with PhoneNumbers, SignName, TemplateCode, TemplateParam (JSON by name)
and OutId = our outbox id. Business errors come back as HTTP 200 with Code != "OK".
Reconciling: `QuerySendDetails` lists what was sent to the number on a day; a record whose
OutId is ours means an earlier attempt got through (its BizId is the message's SID).
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

import sms_gateway.cn_signing as cn_signing
import sms_gateway.provider_templates as provider_templates
from sms_gateway.backends import Accepted, OutgoingSms
from sms_gateway.errors import SendError

log = logging.getLogger(__name__)
API_BASE_URL = "https://dysmsapi.aliyuncs.com"
VERSION = "2017-05-25"
CHINA = ZoneInfo("Asia/Shanghai")
CLOCK_SKEW = timedelta(minutes=5)
# Codes that say "not now" rather than "never": throttling and the provider's own faults.
RETRYABLE = ("isv.BUSINESS_LIMIT_CONTROL", "Throttling", "isp.", "ServiceUnavailable")


def out_id(message: OutgoingSms) -> str:
    return f"hotline-{message.id}"


def phone_numbers(e164: str) -> str:
    """Aliyun wants mainland numbers without +86, and others with the country code, no +."""
    return e164[3:] if e164.startswith("+86") else e164.lstrip("+")


def is_retryable(code: str, http_status: int) -> bool:
    return http_status >= 500 or http_status == 429 or code.startswith(RETRYABLE)


class AliyunBackend:
    name = "aliyun"

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        mapping: dict[str, provider_templates.ProviderTemplate],
        *,
        api_base_url: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        self._key_id, self._secret, self._sign = access_key_id, access_key_secret, sign_name
        self._mapping = mapping
        self._url = (api_base_url or API_BASE_URL).rstrip("/") + "/"
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))

    async def _call(self, action: str, params: dict[str, str]) -> dict[str, Any]:
        query = {
            "AccessKeyId": self._key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": "cn-hangzhou",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": secrets.token_hex(16),
            "SignatureVersion": "1.0",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": VERSION,
            **params,
        }
        query["Signature"] = cn_signing.aliyun_signature(query, self._secret)
        try:
            async with self._http.post(self._url, data=query) as response:
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise SendError(f"aliyun unreachable: {exc!r}", permanent=False) from exc
        try:
            body: dict[str, Any] = json.loads(text)
        except ValueError:
            raise SendError(
                f"aliyun answered HTTP {status}: {text[:200]}", permanent=False
            ) from None
        code = str(body.get("Code", ""))
        if status != 200 or code != "OK":
            permanent = not is_retryable(code, status)
            raise SendError(str(body.get("Message", text[:200])), permanent=permanent, code=code)
        return body

    async def send(self, message: OutgoingSms) -> Accepted:
        template = self._mapping.get(message.template or "")
        if template is None:
            raise SendError(
                f"no approved aliyun template for SMS kind {message.template!r}", permanent=True
            )
        filled = provider_templates.fill(template, message.template or "", message.params)
        body = await self._call(
            "SendSms",
            {
                "PhoneNumbers": phone_numbers(message.to),
                "SignName": self._sign,
                "TemplateCode": template.code,
                "TemplateParam": json.dumps(dict(filled), ensure_ascii=False),
                "OutId": out_id(message),
            },
        )
        return Accepted(str(body["BizId"]), "accepted")

    async def find_sent(self, message: OutgoingSms) -> Accepted | None:
        since = (message.first_attempt_at - CLOCK_SKEW).astimezone(CHINA).date()
        today = datetime.now(CHINA).date()
        day = since
        while day <= today:
            found = await self._find_on(message, day.strftime("%Y%m%d"))
            if found is not None:
                return found
            day += timedelta(days=1)
        return None

    async def _find_on(self, message: OutgoingSms, send_date: str) -> Accepted | None:
        page = 1
        while True:
            body = await self._call(
                "QuerySendDetails",
                {
                    "PhoneNumber": phone_numbers(message.to),
                    "SendDate": send_date,
                    "PageSize": "50",
                    "CurrentPage": str(page),
                },
            )
            details = body.get("SmsSendDetailDTOs", {}).get("SmsSendDetailDTO", [])
            for item in details:
                if item.get("OutId") == out_id(message):
                    # The detail record carries our OutId but not always the BizId; the
                    # OutId then stands for the SID (receipts carry both, see the edge).
                    sid = str(item.get("BizId") or out_id(message))
                    log.info("SMS %s was already accepted by Aliyun as %s", message.id, sid)
                    return Accepted(sid, "accepted")
            if page * 50 >= int(body.get("TotalCount", 0)) or not details:
                return None
            page += 1

    async def close(self) -> None:
        await self._http.close()
