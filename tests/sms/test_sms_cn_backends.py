"""Aliyun and Tencent Cloud backends against their loopback fakes: signed requests with the
approved template and its variables, the providers' error codes split into permanent and
retryable, and start-up refusing a message kind with no template."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cn_providers import MAPPING, aliyun_backend, running, tencent_backend
from fake_cn import TEMPLATES_SETTING, FakeAliyun
from fake_tencent import FakeTencent
from sqlalchemy import select

from agent_desktop.sms.webhook import check_settings
from crm_core.db import Database
from crm_core.settings import Settings, SettingsError
from sms_gateway.backends import SmsBackend
from sms_gateway.models import SmsMessage
from sms_gateway.outbox import enqueue, enqueue_notice
from sms_gateway.worker import OutboxWorker
from ticketing.notices import SmsNotice

TO = "+8613800000001"
DISPATCH = SmsNotice(
    to=TO,
    template="work_order_dispatched",
    params={
        "order": "17",
        "request": "R-1",
        "customer": "张三",
        "phone": "13900000000",
        "vehicle": "皖A12345",
        "address": "合肥市 蜀山区 " + "很长的地址" * 20,
        "problem": "刹车异响",
    },
    key="work_order:17:dispatched",
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def only_row(db: Database) -> SmsMessage:
    async with db.transaction() as s:
        (row,) = (await s.scalars(select(SmsMessage))).all()
        return row


async def send_one(db: Database, backend: SmsBackend, to: str = TO, **kw: object) -> SmsMessage:
    async with db.transaction() as s:
        if kw:
            await enqueue(s, to, "body", "k-1", **kw)  # type: ignore[arg-type]
        else:
            await enqueue_notice(s, DISPATCH)
    await OutboxWorker(db, backend).run_once()
    return await only_row(db)


async def test_aliyun_sends_the_approved_template_by_name(db: Database) -> None:
    async with running("aliyun") as p:
        row = await send_one(db, p.backend)
        (sent,) = p.fake.messages
    assert row.state == "sent" and row.provider == "aliyun" and row.provider_sid == sent["biz_id"]
    assert sent["to"] == "13800000001" and sent["template"] == "T_DISPATCH"
    assert sent["out_id"] == f"hotline-{row.id}"
    assert sent["params"]["order"] == "17" and sent["params"]["customer"] == "张三"
    assert len(sent["params"]["address"]) <= 35 and sent["params"]["address"].endswith("…")


async def test_tencent_sends_the_approved_template_by_position(db: Database) -> None:
    async with running("tencent") as p:
        row = await send_one(db, p.backend)
        (sent,) = p.fake.messages
    assert row.state == "sent" and row.provider_sid == sent["serial"]
    assert sent["to"] == TO and sent["template"] == "T_DISPATCH"
    assert sent["params"][:3] == ["17", "张三", "13900000000"]
    assert sent["context"] == f"hotline-{row.id}"


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_invalid_number_fails_for_good(db: Database, provider: str) -> None:
    async with running(provider) as p:
        row = await send_one(db, p.backend, to="+1555", template="command_help")
    code = "isv.MOBILE_NUMBER_ILLEGAL" if provider == "aliyun" else "IncorrectPhoneNumber"
    assert row.state == "failed" and row.attempts == 1
    assert row.error is not None and code in row.error


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_a_free_text_with_no_template_fails_for_good(db: Database, provider: str) -> None:
    async with running(provider) as p:
        async with db.transaction() as s:
            await enqueue(s, TO, "free text", "free-1")
        await OutboxWorker(db, p.backend).run_once()
        assert p.fake.messages == []
    row = await only_row(db)
    assert row.state == "failed" and row.error is not None and "template" in row.error


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_provider_faults_are_retried_then_sent_once(db: Database, provider: str) -> None:
    async with running(provider) as p:
        p.fake.fail_next = 2
        async with db.transaction() as s:
            await enqueue(s, TO, "x", "retry-1", template="command_ok", params={"order": "3"})
        clock = Clock()
        worker = OutboxWorker(db, p.backend, clock=clock)
        for attempt in (1, 2):
            assert await worker.run_once() == 0
            row = await only_row(db)
            assert row.state == "pending" and row.attempts == attempt
            assert row.error is not None and (
                "isp.SYSTEM_ERROR" in row.error or "InternalError" in row.error
            )
            clock.now = row.next_attempt_at + timedelta(seconds=1)
        assert await worker.run_once() == 1
        assert len(p.sent_to(TO)) == 1


async def test_wrong_secrets_fail_for_good(db: Database) -> None:
    fake_a, fake_t = await FakeAliyun().start(), await FakeTencent().start()
    try:
        for backend, code in (
            (aliyun_backend(fake_a, secret="wrong"), "SignatureDoesNotMatch"),
            (tencent_backend(fake_t, key="wrong"), "AuthFailure.SignatureFailure"),
        ):
            try:
                async with db.transaction() as s:
                    await enqueue(s, TO, "x", f"auth-{code}", template="command_help")
                await OutboxWorker(db, backend).run_once()
            finally:
                await backend.close()
        async with db.transaction() as s:
            rows = (await s.scalars(select(SmsMessage).order_by(SmsMessage.id))).all()
        assert [r.state for r in rows] == ["failed", "failed"]
        assert "SignatureDoesNotMatch" in (rows[0].error or "")
        assert "AuthFailure.SignatureFailure" in (rows[1].error or "")
        assert fake_a.messages == [] and fake_t.messages == []
    finally:
        await fake_a.stop()
        await fake_t.stop()


async def test_unapproved_template_code_fails_for_good(db: Database) -> None:
    fake = await FakeAliyun().start()
    mapping = {**MAPPING, "command_help": MAPPING["command_help"].__class__("T_UNKNOWN", ())}
    backend = aliyun_backend(fake)
    backend._mapping = mapping
    try:
        row = await send_one(db, backend, template="command_help")
    finally:
        await backend.close()
        await fake.stop()
    assert row.state == "failed" and "isv.SMS_TEMPLATE_ILLEGAL" in (row.error or "")


def cn_settings(backend: str, templates: str) -> Settings:
    return Settings().replace(
        sms_backend=backend,
        aliyun_access_key_id="id",
        aliyun_access_key_secret="secret",
        aliyun_sign_name="热线服务",
        tencent_secret_id="id",
        tencent_secret_key="key",
        tencent_sms_sdk_app_id="1400006666",
        tencent_sign_name="热线服务",
        sms_templates=templates,
    )


@pytest.mark.parametrize("backend", ["aliyun", "tencent"])
def test_start_up_refuses_a_kind_with_no_template(backend: str) -> None:
    check_settings(cn_settings(backend, TEMPLATES_SETTING))
    without = "; ".join(
        item for item in TEMPLATES_SETTING.split(";") if "sla_escalation" not in item
    )
    with pytest.raises(SettingsError) as refused:
        check_settings(cn_settings(backend, without))
    message = str(refused.value)
    assert "'sla_escalation'" in message and "sms_templates" in message


def test_start_up_refuses_missing_credentials_and_bad_syntax() -> None:
    with pytest.raises(SettingsError, match="aliyun_access_key_secret"):
        check_settings(
            cn_settings("aliyun", TEMPLATES_SETTING).replace(aliyun_access_key_secret="")
        )
    with pytest.raises(SettingsError, match="sms_templates"):
        Settings().replace(sms_templates="command_help")
    # Twilio and local send free text: no template mapping needed.
    check_settings(Settings().replace(sms_backend="local"))


def test_template_param_json_is_by_name() -> None:
    import sms_gateway.provider_templates as provider_templates

    filled = provider_templates.fill(
        MAPPING["sla_escalation"],
        "sla_escalation",
        {"kind": "accept", "order": "9", "office": "合肥"},
    )
    assert json.loads(json.dumps(dict(filled))) == {
        "office": "合肥",
        "request": "",
        "kind_label": "接单",
        "order": "派工单9",
    }
