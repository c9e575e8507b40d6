"""Chinese SMS wording. Every message stays within two segments (134 UCS-2 units): the
free-text fields (the problem, the address) are shortened, never the order number or the
reply syntax the technician needs.
"""

from __future__ import annotations

from collections.abc import Mapping

from sms_gateway.errors import UnknownTemplate
from sms_gateway.segments import fits

MAX_SEGMENTS = 2
ELLIPSIS = "…"

TEMPLATES: dict[str, str] = {
    # 服务派工单 to the technician; {link} opens the mobile page (never shortened).
    "work_order_dispatched": (
        "【派工单{order}】{customer} {phone} {vehicle} {address} 故障:{problem} 回复JD {order}接单"
        " {link}"
    ),
    "work_order_reassigned_away": "【派工单{order}】已改派,无需处理。",
    "command_ok": "【派工单{order}】已记录:{state_label}。",
    "command_refused": "【派工单{order}】{reason}",
    # Sent when a technician's reply cannot be understood.
    "command_help": (
        "无法识别。格式:JD 单号(接单) ETA 单号 14:30 DD 单号(到达) PJ 单号 配件 FC 单号(返厂) "
        "WC 单号 结果(完成)。只有一张单时可省单号。"
    ),
    "sla_escalation": (
        "【超时提醒】{office} 服务请求{request} {kind_label}已超时,请尽快处理。{order}"
    ),
    "plain": "{text}",
}

# The kinds the code sends (ticketing's notices and the SMS edge's replies). A domestic
# provider must have an approved template for each; start-up refuses a missing one.
SENT_KINDS = (
    "work_order_dispatched",
    "command_ok",
    "command_refused",
    "command_help",
    "sla_escalation",
)

# Shortened in this order until the message fits.
SHRINKABLE = ("problem", "address", "customer", "reason", "text")

SLA_KIND_LABELS = {
    "response": "响应",
    "dispatch": "派工",
    "accept": "接单",
    "resolution": "完成",
    "follow_up": "回访",
}


def _fill(template: str, params: Mapping[str, str]) -> str:
    return template.format_map({k: str(v) for k, v in params.items()}).strip()


def _shrink(template: str, values: dict[str, str], key: str) -> bool:
    """Cut `key` to the longest prefix that makes the message fit; False if even empty
    does not fit."""
    text = values[key]
    low, high = 0, len(text)
    if not fits(_fill(template, {**values, key: ""}), MAX_SEGMENTS):
        values[key] = ""
        return False
    while low < high:
        mid = (low + high + 1) // 2
        if fits(_fill(template, {**values, key: text[:mid] + ELLIPSIS}), MAX_SEGMENTS):
            low = mid
        else:
            high = mid - 1
    values[key] = text[:low] + ELLIPSIS if low else ""
    return True


def values_for(name: str, params: Mapping[str, str]) -> dict[str, str]:
    """The template's variables: the notice's parameters, whitespace-folded, plus the
    derived labels. A provider template is filled from the same values."""
    values = {k: " ".join(str(v).split()) for k, v in params.items()}
    if name == "sla_escalation":
        values["kind_label"] = SLA_KIND_LABELS.get(values.get("kind", ""), values.get("kind", ""))
        values["order"] = f"派工单{values['order']}" if values.get("order") else ""
    values.setdefault("state_label", values.get("state", ""))
    # Messages queued before the mobile page existed have no link.
    values.setdefault("link", "")
    values.setdefault("token", "")
    return values


def render(name: str, params: Mapping[str, str]) -> str:
    """The message text, within MAX_SEGMENTS segments."""
    try:
        template = TEMPLATES[name]
    except KeyError:
        raise UnknownTemplate(f"no SMS template named {name!r}", template=name) from None
    values = values_for(name, params)
    body = _fill(template, values)
    for key in SHRINKABLE:
        if fits(body, MAX_SEGMENTS) or key not in values:
            continue
        if _shrink(template, values, key):
            body = _fill(template, values)
    if not fits(body, MAX_SEGMENTS):
        body = body[:130] + ELLIPSIS
    return body
