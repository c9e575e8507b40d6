"""A loopback fake of Tencent Cloud SMS (2021-01-11): TC3-HMAC-SHA256 checked over the
received body and headers, SendSms and PullSmsSendStatusByPhoneNumber, Tencent's error shape
({"Response": {"Error": {"Code", "Message"}, "RequestId"}}) and per-number send codes."""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from fake_cn import APPROVED, CHINA, SIGN_NAME, _Server

import sms_gateway.cn_signing as cn_signing

APP_ID = "1400006666"
AUTH = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/sms/tc3_request, "
    r"SignedHeaders=(?P<headers>[^,]+), Signature=(?P<sig>[0-9a-f]{64})$"
)
E164_CN = re.compile(r"^\+861\d{10}$")


def _response(body: dict[str, Any]) -> web.Response:
    return web.json_response({"Response": {**body, "RequestId": str(uuid.uuid4())}})


def _error(code: str, message: str) -> web.Response:
    return _response({"Error": {"Code": code, "Message": message}})


@dataclass
class FakeTencent(_Server):
    secret_id: str = "AKID-fake"
    secret_key: str = "fake-tencent-key"
    fail_next: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/", self.handle)

    def to(self, e164: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["to"] == e164]

    def check_auth(self, request: web.Request, payload: bytes) -> web.Response | None:
        action = request.headers.get("X-TC-Action", "")
        stamp = request.headers.get("X-TC-Timestamp", "")
        if request.headers.get("X-TC-Version") != "2021-01-11":
            return _error("InvalidParameterValue", "X-TC-Version must be 2021-01-11")
        if request.headers.get("Content-Type") != cn_signing.JSON_TYPE:
            return _error("InvalidParameter", "Content-Type must be application/json")
        match = AUTH.match(request.headers.get("Authorization", ""))
        if not (match and stamp.isdigit() and action):
            return _error("AuthFailure.InvalidAuthorization", "Authorization is invalid")
        if match["id"] != self.secret_id:
            return _error("AuthFailure.SecretIdNotFound", "The SecretId is not found")
        if abs(time.time() - int(stamp)) > 300:
            return _error("AuthFailure.SignatureExpire", "Signature expired")
        expected = cn_signing.tc3_signature(
            self.secret_key, request.headers.get("Host", ""), action, payload, int(stamp), "sms"
        )
        if match["headers"] != cn_signing.TC3_SIGNED_HEADERS or match["sig"] != expected:
            return _error(
                "AuthFailure.SignatureFailure", "The provided credentials could not be validated"
            )
        return None

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.read()
        refused = self.check_auth(request, payload)
        if refused is not None:
            return refused
        body = json.loads(payload)
        action = request.headers["X-TC-Action"]
        if action == "SendSms":
            return self.send(body)
        if action == "PullSmsSendStatusByPhoneNumber":
            return self.pull(body)
        return _error("InvalidAction", f"The action {action} is not found")

    def send(self, p: dict[str, Any]) -> web.Response:
        for name in ("PhoneNumberSet", "SmsSdkAppId", "TemplateId"):
            if not p.get(name):
                return _error(
                    "MissingParameter", f"The request is missing a required parameter `{name}`"
                )
        if self.fail_next > 0:
            self.fail_next -= 1
            return _error("InternalError.Timeout", "Request timed out")
        if p["SmsSdkAppId"] != APP_ID:
            return _error("UnauthorizedOperation.SmsSdkAppIdVerifyFail", "SmsSdkAppId verify fail")
        if p.get("SignName") != SIGN_NAME:
            return _error("FailedOperation.SignatureIncorrectOrUnapproved", "签名未审批或格式错误")
        if p["TemplateId"] not in APPROVED:
            return _error("FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或内容不匹配")
        values = p.get("TemplateParamSet") or []
        if len(values) != len(APPROVED[p["TemplateId"]]) or not all(
            isinstance(v, str) for v in values
        ):
            return _error(
                "FailedOperation.TemplateParamSetNotMatchApprovedTemplate", "参数与模板不匹配"
            )
        statuses = []
        for number in p["PhoneNumberSet"]:
            if not E164_CN.match(number):
                statuses.append(
                    {
                        "SerialNo": "",
                        "PhoneNumber": number,
                        "Fee": 0,
                        "SessionContext": "",
                        "Code": "InvalidParameterValue.IncorrectPhoneNumber",
                        "Message": "手机号格式错误",
                        "IsoCode": "",
                    }
                )
                continue
            serial = f"2028:{next(self._ids):019d}"
            self.messages.append(
                {
                    "serial": serial,
                    "to": number,
                    "template": p["TemplateId"],
                    "params": list(values),
                    "context": p.get("SessionContext", ""),
                    "at": int(time.time()),
                }
            )
            statuses.append(
                {
                    "SerialNo": serial,
                    "PhoneNumber": number,
                    "Fee": 1,
                    "SessionContext": p.get("SessionContext", ""),
                    "Code": "Ok",
                    "Message": "send success",
                    "IsoCode": "CN",
                }
            )
        return _response({"SendStatusSet": statuses})

    def pull(self, p: dict[str, Any]) -> web.Response:
        for name in ("BeginTime", "Limit", "PhoneNumber", "SmsSdkAppId"):
            if name not in p:
                return _error(
                    "MissingParameter", f"The request is missing a required parameter `{name}`"
                )
        found = [
            m
            for m in self.messages
            if m["to"] == p["PhoneNumber"]
            and p["BeginTime"] <= m["at"] <= p.get("EndTime", m["at"])
        ]
        offset, limit = int(p.get("Offset", 0)), min(int(p["Limit"]), 100)
        reports = [
            {
                "UserReceiveTime": m["at"],
                "CountryCode": "86",
                "SubscriberNumber": m["to"][3:],
                "PhoneNumber": m["to"],
                "SerialNo": m["serial"],
                "ReportStatus": "SUCCESS",
                "Description": "用户短信送达成功",
                "SessionContext": m["context"],
            }
            for m in found[offset : offset + limit]
        ]
        return _response({"PullSmsSendStatusSet": reports})

    @staticmethod
    def report(serial: str, success: bool = True, age: float = 0) -> list[Any]:
        at = (datetime.now(CHINA) - timedelta(seconds=age)).strftime("%Y-%m-%d %H:%M:%S")
        return [
            {
                "user_receive_time": at,
                "nationcode": "86",
                "mobile": "13800000001",
                "report_status": "SUCCESS" if success else "FAIL",
                "errmsg": "DELIVRD" if success else "MK:0005",
                "description": "用户短信送达成功" if success else "失败",
                "sid": serial,
            }
        ]

    @staticmethod
    def reply(phone: str, text: str, age: float = 0) -> dict[str, Any]:
        return {
            "extend": "",
            "mobile": phone.removeprefix("+86"),
            "nationcode": "86",
            "sign": SIGN_NAME,
            "text": text,
            "time": int(time.time() - age),
        }
