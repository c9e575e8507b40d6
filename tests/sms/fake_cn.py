"""Loopback fakes of Aliyun SMS (Dysmsapi 2017-05-25, RPC style) and Tencent Cloud SMS
(2021-01-11, TC3-HMAC-SHA256), for tests.

Each checks a request the way the real API does: the signature recomputed with the same
public algorithm over what was received, the common parameters, the approved signature name,
the template code and its variables; and answers with the provider's own error shapes and
codes, so the backend's permanent/retryable split is exercised.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

import sms_gateway.cn_signing as cn_signing

CHINA = ZoneInfo("Asia/Shanghai")
SIGN_NAME = "热线服务"
# The approved templates, by code: the variables each one has (Aliyun: names; Tencent: count).
APPROVED = {
    "T_DISPATCH": ("order", "customer", "phone", "address", "problem"),
    "T_OK": ("order", "state_label"),
    "T_REFUSED": ("order", "reason"),
    "T_HELP": (),
    "T_SLA": ("office", "request", "kind_label", "order"),
}
TEMPLATES_SETTING = (
    "work_order_dispatched=T_DISPATCH:order,customer,phone,address,problem;"
    " command_ok=T_OK:order,state_label; command_refused=T_REFUSED:order,reason;"
    " command_help=T_HELP; sla_escalation=T_SLA:office,request,kind_label,order"
)
MAINLAND = re.compile(r"^1\d{10}$")


class _Server:
    base_url: str = ""
    _runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> _Server:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class FakeAliyun(_Server):
    key_id: str = "LTAI-fake-key"
    secret: str = "fake-aliyun-secret"
    fail_next: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/", self.handle)

    def to(self, e164: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["to"] == e164.removeprefix("+86")]

    @staticmethod
    def error(code: str, message: str, status: int = 200) -> web.Response:
        body = {"Code": code, "Message": message, "RequestId": str(uuid.uuid4())}
        if status != 200:
            body["HostId"] = "dysmsapi.aliyuncs.com"
        return web.json_response(body, status=status)

    def check_common(self, p: dict[str, str]) -> web.Response | None:
        for name in ("AccessKeyId", "Action", "SignatureNonce", "Timestamp", "Signature"):
            if not p.get(name):
                return self.error("MissingParameter", f"{name} is mandatory", 400)
        if p.get("SignatureMethod") != "HMAC-SHA1" or p.get("SignatureVersion") != "1.0":
            return self.error("InvalidParameter", "unsupported signature method", 400)
        if p.get("Version") != "2017-05-25" or p.get("Format") != "JSON":
            return self.error("InvalidVersion", "Specified parameter Version is not valid.", 400)
        if p["AccessKeyId"] != self.key_id:
            return self.error(
                "InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404
            )
        if cn_signing.aliyun_signature(p, self.secret) != p["Signature"]:
            return self.error("SignatureDoesNotMatch", "Specified signature is not matched.", 400)
        sent = datetime.strptime(p["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if abs(datetime.now(UTC) - sent) > timedelta(minutes=15):
            return self.error("InvalidTimeStamp.Expired", "Specified time stamp is expired.", 400)
        if p["SignatureNonce"] in self.nonces:
            return self.error("SignatureNonceUsed", "Specified signature nonce was used.", 400)
        self.nonces.add(p["SignatureNonce"])
        return None

    async def handle(self, request: web.Request) -> web.Response:
        params = {k: str(v) for k, v in (await request.post()).items()}
        refused = self.check_common(params)
        if refused is not None:
            return refused
        if params["Action"] == "SendSms":
            return self.send(params)
        if params["Action"] == "QuerySendDetails":
            return self.query(params)
        return self.error("InvalidAction.NotFound", "Specified api is not found.", 404)

    def send(self, p: dict[str, str]) -> web.Response:
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not p.get(name):
                return self.error("MissingParameter", f"{name} is mandatory", 400)
        if self.fail_next > 0:
            self.fail_next -= 1
            return self.error("isp.SYSTEM_ERROR", "isp.SYSTEM_ERROR")
        if not MAINLAND.match(p["PhoneNumbers"]):
            return self.error("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        if p["SignName"] != SIGN_NAME:
            return self.error("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        if p["TemplateCode"] not in APPROVED:
            return self.error("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        try:
            variables = json.loads(p.get("TemplateParam") or "{}")
        except ValueError:
            return self.error("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if not all(isinstance(v, str) for v in variables.values()):
            return self.error("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if set(variables) != set(APPROVED[p["TemplateCode"]]):
            return self.error("isv.TEMPLATE_MISSING_PARAMETERS", "模板变量缺少对应参数值")
        biz_id = f"{next(self._ids)}^0"
        self.messages.append(
            {
                "biz_id": biz_id,
                "to": p["PhoneNumbers"],
                "template": p["TemplateCode"],
                "params": variables,
                "out_id": p.get("OutId", ""),
                "at": datetime.now(CHINA),
            }
        )
        return web.json_response(
            {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": str(uuid.uuid4())}
        )

    def query(self, p: dict[str, str]) -> web.Response:
        for name in ("PhoneNumber", "SendDate", "PageSize", "CurrentPage"):
            if not p.get(name):
                return self.error("MissingParameter", f"{name} is mandatory", 400)
        day = [
            m
            for m in self.messages
            if m["to"] == p["PhoneNumber"] and m["at"].strftime("%Y%m%d") == p["SendDate"]
        ]
        size, page = int(p["PageSize"]), int(p["CurrentPage"])
        dtos = [
            {
                "PhoneNum": m["to"],
                "SendStatus": 3,
                "ErrCode": "DELIVERED",
                "TemplateCode": m["template"],
                "Content": "",
                "SendDate": m["at"].strftime("%Y-%m-%d %H:%M:%S"),
                "ReceiveDate": m["at"].strftime("%Y-%m-%d %H:%M:%S"),
                "OutId": m["out_id"],
            }
            for m in day[(page - 1) * size : page * size]
        ]
        return web.json_response(
            {
                "Code": "OK",
                "Message": "OK",
                "RequestId": str(uuid.uuid4()),
                "TotalCount": str(len(day)),
                "SmsSendDetailDTOs": {"SmsSendDetailDTO": dtos},
            }
        )

    @staticmethod
    def report(biz_id: str, out_id: str = "", success: bool = True, age: float = 0) -> list[Any]:
        at = (datetime.now(CHINA) - timedelta(seconds=age)).strftime("%Y-%m-%d %H:%M:%S")
        return [
            {
                "phone_number": "13800000001",
                "send_time": at,
                "report_time": at,
                "success": success,
                "err_code": "DELIVERED" if success else "MK:0001",
                "err_msg": "用户接收成功" if success else "失败",
                "sms_size": "1",
                "biz_id": biz_id,
                "out_id": out_id,
            }
        ]

    @staticmethod
    def uplink(phone: str, text: str, sequence_id: int, age: float = 0) -> list[Any]:
        at = (datetime.now(CHINA) - timedelta(seconds=age)).strftime("%Y-%m-%d %H:%M:%S")
        return [
            {
                "phone_number": phone.removeprefix("+86"),
                "send_time": at,
                "content": text,
                "sign_name": SIGN_NAME,
                "dest_code": "",
                "sequence_id": sequence_id,
            }
        ]
