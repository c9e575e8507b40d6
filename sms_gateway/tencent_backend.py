"""Tencent Cloud SMS (API 2021-01-11), spoken directly over HTTP with aiohttp and the
TC3-HMAC-SHA256 signature (sms_gateway.cn_signing).

Sending: `SendSms` with PhoneNumberSet, SmsSdkAppId, SignName, TemplateId, TemplateParamSet
(by position) and SessionContext = our outbox id. Errors come back as HTTP 200 with
Response.Error, or per number in SendStatusSet[].Code.
Reconciling: `PullSmsSendStatusByPhoneNumber` lists the delivery reports for the number; a
report whose SessionContext is ours means an earlier attempt got through. It lists only
messages that already have a report (docs/sms.md states what that means).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp

import sms_gateway.cn_signing as cn_signing
import sms_gateway.provider_templates as provider_templates
from sms_gateway.backends import Accepted, OutgoingSms
from sms_gateway.errors import SendError

log = logging.getLogger(__name__)
API_BASE_URL = "https://sms.tencentcloudapi.com"
VERSION = "2021-01-11"
CLOCK_SKEW = 300
PAGE = 100
# "Not now" rather than "never": rate limits and the provider's own faults.
RETRYABLE = ("LimitExceeded", "RequestLimitExceeded", "InternalError", "ResourceUnavailable")


def session_context(message: OutgoingSms) -> str:
    return f"hotline-{message.id}"


def is_retryable(code: str) -> bool:
    return code.startswith(RETRYABLE)


class TencentBackend:
    name = "tencent"

    def __init__(
        self,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        sign_name: str,
        mapping: dict[str, provider_templates.ProviderTemplate],
        *,
        region: str = "ap-guangzhou",
        api_base_url: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        self._id, self._key, self._app, self._sign = secret_id, secret_key, sdk_app_id, sign_name
        self._mapping, self._region = mapping, region
        self._url = (api_base_url or API_BASE_URL).rstrip("/") + "/"
        self._host = urlsplit(self._url).netloc
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))

    async def _call(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(params, ensure_ascii=False).encode()
        now = int(time.time())
        headers = {
            "Authorization": cn_signing.tc3_authorization(
                self._id, self._key, self._host, action, payload, now
            ),
            "Content-Type": cn_signing.JSON_TYPE,
            "Host": self._host,
            "X-TC-Action": action,
            "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(now),
            "X-TC-Region": self._region,
        }
        try:
            async with self._http.post(self._url, data=payload, headers=headers) as response:
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise SendError(f"tencent unreachable: {exc!r}", permanent=False) from exc
        try:
            body: dict[str, Any] = json.loads(text)["Response"]
        except (ValueError, KeyError, TypeError):
            raise SendError(
                f"tencent answered HTTP {status}: {text[:200]}", permanent=False
            ) from None
        error = body.get("Error")
        if error:
            code = str(error.get("Code", ""))
            raise SendError(
                str(error.get("Message", "")), permanent=not is_retryable(code), code=code
            )
        if status != 200:
            raise SendError(f"tencent answered HTTP {status}", permanent=status < 500)
        return body

    async def send(self, message: OutgoingSms) -> Accepted:
        template = self._mapping.get(message.template or "")
        if template is None:
            raise SendError(
                f"no approved tencent template for SMS kind {message.template!r}", permanent=True
            )
        filled = provider_templates.fill(template, message.template or "", message.params)
        body = await self._call(
            "SendSms",
            {
                "PhoneNumberSet": [message.to],
                "SmsSdkAppId": self._app,
                "SignName": self._sign,
                "TemplateId": template.code,
                "TemplateParamSet": [value for _name, value in filled],
                "SessionContext": session_context(message),
            },
        )
        (result,) = body.get("SendStatusSet") or [{}]
        code = str(result.get("Code", ""))
        if code != "Ok":
            raise SendError(
                str(result.get("Message", "no send status")),
                permanent=not is_retryable(code),
                code=code,
            )
        return Accepted(str(result["SerialNo"]), "accepted")

    async def find_sent(self, message: OutgoingSms) -> Accepted | None:
        begin = int(message.first_attempt_at.timestamp()) - CLOCK_SKEW
        offset = 0
        while True:
            body = await self._call(
                "PullSmsSendStatusByPhoneNumber",
                {
                    "BeginTime": begin,
                    "EndTime": int(time.time()) + CLOCK_SKEW,
                    "Offset": offset,
                    "Limit": PAGE,
                    "PhoneNumber": message.to,
                    "SmsSdkAppId": self._app,
                },
            )
            reports = body.get("PullSmsSendStatusSet") or []
            for item in reports:
                if item.get("SessionContext") == session_context(message):
                    log.info(
                        "SMS %s was already accepted by Tencent as %s", message.id, item["SerialNo"]
                    )
                    return Accepted(str(item["SerialNo"]), "accepted")
            if len(reports) < PAGE:
                return None
            offset += PAGE

    async def close(self) -> None:
        await self._http.close()
