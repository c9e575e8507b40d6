"""Approved provider templates: Aliyun and Tencent Cloud send only a template registered
(and approved) under an approved signature, filled with parameters. Our message kinds map
to them through the `sms_templates` setting:

    sms_templates = "work_order_dispatched=SMS_100:order,customer,problem; command_help=SMS_104"

Aliyun fills the template by name (TemplateParam JSON); Tencent by position
(TemplateParamSet), in the order written here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sms_gateway.templates as templates
from crm_core.settings import Settings, SettingsError

SETTING = "sms_templates"
# Providers cap one variable's length (Aliyun: 35 characters for most variable types).
MAX_PARAM = 35
# A cut link opens nothing: these are sent whole. `token` (32 characters) fits the cap; a
# template should hold the fixed https://host/m/ prefix and take `token` as its variable.
NEVER_CUT = frozenset({"link", "token"})


@dataclass(frozen=True)
class ProviderTemplate:
    code: str
    params: tuple[str, ...]


def parse(text: str) -> dict[str, ProviderTemplate]:
    mapping: dict[str, ProviderTemplate] = {}
    for item in (v.strip() for v in text.split(";")):
        if not item:
            continue
        kind, _, rest = item.partition("=")
        code, _, names = rest.partition(":")
        params = tuple(n.strip() for n in names.split(",") if n.strip())
        mapping[kind.strip()] = ProviderTemplate(code.strip(), params)
    return mapping


def required(settings: Settings) -> dict[str, ProviderTemplate]:
    """The mapping, checked at start-up: every kind the code sends has a template."""
    mapping = parse(settings.sms_templates)
    for kind in templates.SENT_KINDS:
        if kind not in mapping:
            raise SettingsError(
                f"setting {SETTING}: SMS kind {kind!r} has no approved {settings.sms_backend} "
                f"template; add {kind}=TEMPLATE_CODE:param,... to {SETTING} "
                f"(environment HOTLINE_SMS_TEMPLATES)"
            )
    unknown = sorted(set(mapping) - set(templates.TEMPLATES))
    if unknown:
        raise SettingsError(f"setting {SETTING}: unknown SMS kind(s) {', '.join(unknown)}")
    return mapping


def fill(template: ProviderTemplate, kind: str, params: Mapping[str, str]) -> list[tuple[str, str]]:
    """(name, value) in the configured order; long values are cut to MAX_PARAM."""
    values = templates.values_for(kind, params)
    filled = []
    for name in template.params:
        value = values.get(name, "")
        if len(value) > MAX_PARAM and name not in NEVER_CUT:
            value = value[: MAX_PARAM - 1] + templates.ELLIPSIS
        filled.append((name, value))
    return filled
