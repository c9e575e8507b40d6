"""One backend per provider against its loopback fake, for tests parametrized over
twilio/aliyun/tencent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fake_cn import SIGN_NAME, TEMPLATES_SETTING, FakeAliyun
from fake_tencent import APP_ID, FakeTencent
from fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio

import sms_gateway.provider_templates as provider_templates
from sms_gateway.aliyun_backend import AliyunBackend
from sms_gateway.backends import SmsBackend
from sms_gateway.tencent_backend import TencentBackend
from sms_gateway.twilio_backend import TwilioBackend

PROVIDERS = ("twilio", "aliyun", "tencent")
MAPPING = provider_templates.parse(TEMPLATES_SETTING)


@dataclass
class Provider:
    name: str
    backend: SmsBackend
    fake: Any
    # The fake's records of messages to a number, and the SID of one record.
    sent_to: Callable[[str], list[dict[str, Any]]]
    sid: Callable[[dict[str, Any]], str]


def aliyun_backend(fake: FakeAliyun, secret: str | None = None) -> AliyunBackend:
    return AliyunBackend(
        fake.key_id, secret or fake.secret, SIGN_NAME, MAPPING, api_base_url=fake.base_url
    )


def tencent_backend(fake: FakeTencent, key: str | None = None) -> TencentBackend:
    return TencentBackend(
        fake.secret_id,
        key or fake.secret_key,
        APP_ID,
        SIGN_NAME,
        MAPPING,
        api_base_url=fake.base_url,
    )


@asynccontextmanager
async def running(name: str) -> AsyncIterator[Provider]:
    if name == "twilio":
        fake: Any = await FakeTwilio().start()
        backend: SmsBackend = TwilioBackend(
            ACCOUNT_SID, AUTH_TOKEN, from_number=FROM_NUMBER, api_base_url=fake.base_url
        )
        provider = Provider(name, backend, fake, fake.to, lambda m: str(m["sid"]))
    elif name == "aliyun":
        fake = await FakeAliyun().start()
        provider = Provider(name, aliyun_backend(fake), fake, fake.to, lambda m: str(m["biz_id"]))
    else:
        fake = await FakeTencent().start()
        provider = Provider(name, tencent_backend(fake), fake, fake.to, lambda m: str(m["serial"]))
    try:
        yield provider
    finally:
        await provider.backend.close()
        await fake.stop()
