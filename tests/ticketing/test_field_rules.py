"""Domain rules of the mobile page: signed links, image preparation, offers taken by exactly
one technician, page actions applied once even when sent twice at the same moment."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select
from ticket_world import World, world_fixture  # noqa: F401  (registers the fixture)

from crm_core.db import Database
from sms_gateway import provider_templates
from sms_gateway.commands import Command, parse
from sms_gateway.errors import CommandParseError
from sms_gateway.templates import render
from ticketing.errors import FieldLinkExpired, FieldLinkInvalid, InvalidImage, WorkOrderTaken
from ticketing.field_files import prepare
from ticketing.field_links import TOKEN_LENGTH, FieldLinks
from ticketing.journal import Actor
from ticketing.mobile import MobileAction, MobileFieldService, MobileKind
from ticketing.models import FieldAction, Transition, WorkOrder
from ticketing.offers import OfferService
from ticketing.requests import ServiceRequestService
from ticketing.work_orders import WorkOrderService

NOW = datetime(2026, 12, 4, 4, 0, tzinfo=UTC)
LINKS = FieldLinks(
    "unit-test-secret-0123456789", "https://hotline.example.com", timedelta(hours=72)
)


def test_a_link_names_its_order_and_technician_and_fits_a_template_variable() -> None:
    token = LINKS.token(123456, 789, NOW)
    assert len(token) == TOKEN_LENGTH <= provider_templates.MAX_PARAM
    claim = LINKS.verify(token, NOW + timedelta(hours=71))
    assert (claim.work_order_id, claim.technician_id) == (123456, 789)
    assert LINKS.url(1, 2, NOW).startswith("https://hotline.example.com/m/")


def test_every_changed_character_and_other_secrets_are_refused() -> None:
    token = LINKS.token(42, 7, NOW)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for position in range(len(token)):
        for replacement in ("A", "_"):
            changed = token[:position] + replacement + token[position + 1 :]
            if changed == token:
                continue
            with pytest.raises(FieldLinkInvalid):
                LINKS.verify(changed, NOW)
    for bad in ("", token[:-1], token + "A", "é" * TOKEN_LENGTH, "!" * TOKEN_LENGTH):
        with pytest.raises(FieldLinkInvalid):
            LINKS.verify(bad, NOW)
    other = FieldLinks("another-secret-0123456789", LINKS.base_url, LINKS.max_age)
    with pytest.raises(FieldLinkInvalid):
        other.verify(token, NOW)
    assert set(token) <= set(alphabet)


def test_an_old_link_has_expired() -> None:
    token = LINKS.token(42, 7, NOW)
    with pytest.raises(FieldLinkExpired):
        LINKS.verify(token, NOW + timedelta(hours=72))


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_photos_are_resized_turned_upright_and_stripped() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # taken with the phone on its side: rotate 90°
    exif[0x010F] = "PhoneMaker"
    data = _encoded(Image.new("RGB", (4000, 3000), "red"), "JPEG", exif=exif)
    prepared = prepare(data, "photo", 1600)
    assert (prepared.width, prepared.height) == (1200, 1600)
    with Image.open(io.BytesIO(prepared.data)) as image:
        assert image.format == "JPEG" and not image.getexif()
    signature = prepare(_encoded(Image.new("RGBA", (340, 180)), "PNG"), "signature", 1600)
    assert signature.content_type == "image/png" and signature.data[:4] == b"\x89PNG"


def test_what_is_not_a_photo_is_refused() -> None:
    gif = _encoded(Image.new("RGB", (10, 10)), "GIF")
    jpeg = _encoded(Image.new("RGB", (300, 300)), "JPEG")
    for data in (b"", b"plain text", gif, jpeg[: len(jpeg) // 2]):
        with pytest.raises(InvalidImage):
            prepare(data, "photo", 1600)
    huge = _encoded(Image.new("1", (10000, 10000)), "PNG")  # 100 megapixels, tiny file
    with pytest.raises(InvalidImage):
        prepare(huge, "photo", 1600)


def test_the_dispatch_sms_carries_the_whole_link() -> None:
    link = LINKS.url(77, 5, NOW)
    params = {
        "order": "77",
        "customer": "阜阳顺达物流" * 5,
        "phone": "13905580000",
        "vehicle": "皖K12345",
        "address": "阜阳 颍州区工业路8号",
        "problem": "刹车" * 80,
        "link": link,
    }
    params["token"] = link.rsplit("/", 1)[1]
    body = render("work_order_dispatched", params)
    assert body.endswith(link)
    mapping = provider_templates.parse("work_order_dispatched=SMS_1:order,link,token")
    filled = dict(provider_templates.fill(mapping["work_order_dispatched"], "x", params))
    assert filled["link"] == link and filled["token"] == params["token"]


def test_decline_by_sms_needs_a_reason() -> None:
    parsed = parse("JJ 1234 人在外地")
    assert (parsed.command, parsed.order, parsed.text) == (Command.DECLINE, 1234, "人在外地")
    assert parse("拒单 12 车坏了").command == Command.DECLINE
    with pytest.raises(CommandParseError):
        parse("JJ 1234")


async def _approved(world: World) -> int:
    requests = ServiceRequestService(world.ctx)
    boss = Actor.user(world.supervisor)
    row = await requests.create(
        {"customer_id": world.customer_id, "description": "发动机异响"}, Actor.user(world.agent)
    )
    await requests.act(row.id, "submit", Actor.user(world.agent))
    await requests.act(row.id, "start_review", Actor.user(world.reviewer))
    await requests.act(row.id, "approve", boss, office="合肥服务站")
    return row.id


async def test_exactly_one_of_two_simultaneous_accepts_takes_the_offer(world: World) -> None:
    mobile = MobileFieldService(world.ctx, WorkOrderService(world.ctx))
    for round_no in range(5):
        order = await OfferService(world.ctx).offer(
            await _approved(world), [world.tech, world.tech2], Actor.user(world.supervisor)
        )
        results = await asyncio.gather(
            mobile.act(order.id, world.tech, MobileAction(f"r{round_no}-tech1", MobileKind.ACCEPT)),
            mobile.act(
                order.id, world.tech2, MobileAction(f"r{round_no}-tech2", MobileKind.ACCEPT)
            ),
            return_exceptions=True,
        )
        taken = [r for r in results if isinstance(r, WorkOrderTaken)]
        won = [r for r in results if not isinstance(r, BaseException)]
        assert len(taken) == 1 and len(won) == 1, results
        async with world.ctx.db.transaction() as s:
            row = await s.get(WorkOrder, order.id)
            accepts = await s.scalar(
                select(func.count())
                .select_from(Transition)
                .where(Transition.entity_id == order.id, Transition.action == "accept")
            )
        assert row is not None and row.state == "accepted" and accepts == 1
    sms_to = {n.to for n in world.notes.notices if n.template == "work_order_dispatched"}
    assert sms_to == {world.tech_mobile, world.tech2_mobile}


async def test_the_same_action_sent_twice_at_once_is_applied_once(world: World) -> None:
    orders = WorkOrderService(world.ctx)
    order = await orders.dispatch(await _approved(world), world.tech, Actor.user(world.supervisor))
    mobile = MobileFieldService(world.ctx, orders)
    action = MobileAction("same-moment-01", MobileKind.ACCEPT)
    first, second = await asyncio.gather(
        mobile.act(order.id, world.tech, action), mobile.act(order.id, world.tech, action)
    )
    assert sorted([first.duplicate, second.duplicate]) == [False, True]
    assert first.state == second.state == "accepted"
    db: Database = world.ctx.db
    async with db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(FieldAction)) == 1
