"""The technician's mobile page over real HTTP against the whole app: the signed link from
the dispatch SMS, every action through the same machine and audit as SMS, resends applied
once, bad input refused with nothing written, photos on the desktop behind a permission
check and an audit row."""

from __future__ import annotations

import hashlib
from pathlib import Path

from field_world import Field, field_app, jpeg, signature_png
from PIL import Image
from sqlalchemy import select

from crm_core.db import Database
from ticketing.models import (
    FieldAction,
    FollowUp,
    ServiceRequest,
    Transition,
    WorkOrder,
    WorkOrderFile,
)

HTML = {"Accept": "text/html"}


async def _order(field: Field, order_id: int) -> WorkOrder:
    async with field.db.transaction() as s:
        row = await s.get(WorkOrder, order_id)
        assert row is not None
        return row


async def _files(field: Field, order_id: int) -> list[WorkOrderFile]:
    async with field.db.transaction() as s:
        rows = await s.scalars(
            select(WorkOrderFile)
            .where(WorkOrderFile.work_order_id == order_id)
            .order_by(WorkOrderFile.id)
        )
        return list(rows.all())


async def test_the_whole_job_from_the_link(db: Database) -> None:
    async with field_app(db.settings) as field:
        request_id, order_id, token = await field.dispatched()
        status, page = await field.get(f"/m/{token}", headers=HTML)
        assert status == 200
        assert "工单" in page and "刹车异响" in page and "阜阳顺达物流" in page
        assert 'name="viewport"' in page

        status, body = await field.act(token, {"action_id": "a-accept-01", "kind": "accept"})
        assert (status, body["state"]) == (201, "accepted")
        status, body = await field.act(
            token, {"action_id": "a-eta-0001", "kind": "eta", "eta": "15:40"}
        )
        assert (status, body["state"]) == (201, "en_route")
        position = {"lat": 32.89, "lng": 115.81, "accuracy": 12}
        status, body = await field.act(
            token, {"action_id": "a-arrive-1", "kind": "arrive", "position": position}
        )
        assert (status, body["state"]) == (201, "on_site")
        status, body = await field.photo(token, jpeg(), "a-photo-001")
        assert status == 201 and body["photos"] == 1
        status, _ = await field.act(
            token, {"action_id": "a-note-001", "kind": "note", "text": "制动盘磨损"}
        )
        assert status == 201
        status, _ = await field.act(
            token, {"action_id": "a-parts-01", "kind": "parts", "text": "刹车片×2"}
        )
        assert status == 201
        status, body = await field.act(
            token,
            {
                "action_id": "a-done-001",
                "kind": "complete",
                "text": "更换刹车片，试车正常",
                "signature": signature_png(),
            },
        )
        assert (status, body["state"], body["signed"]) == (201, "done", True)

        order = await _order(field, order_id)
        assert order.parts_used == "刹车片×2" and order.resolution == "更换刹车片，试车正常"
        async with field.db.transaction() as s:
            request = await s.get(ServiceRequest, request_id)
            follow_up = await s.scalar(select(FollowUp).where(FollowUp.request_id == request_id))
            records = (
                await s.scalars(
                    select(Transition)
                    .where(Transition.entity == "work_order", Transition.entity_id == order_id)
                    .order_by(Transition.id)
                )
            ).all()
        assert request is not None and request.state == "follow_up" and follow_up is not None
        assert [r.action for r in records] == ["create", "accept", "set_eta", "arrive", "complete"]
        assert {r.actor for r in records[1:]} == {f"mobile:{field.world.tech}"}
        assert records[3].detail == {"position": {"lat": 32.89, "lng": 115.81, "accuracy": 12.0}}
        kinds = [a.action for a in await field.audits("field_mobile:photo")]
        assert kinds == ["field_mobile:photo"]

        photo, signature = await _files(field, order_id)
        assert (photo.kind, signature.kind) == ("photo", "signature")
        root = Path(db.settings.var_dir) / "field_files"
        stored = (root / photo.path).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == photo.sha256
        with Image.open(root / photo.path) as image:
            assert image.format == "JPEG" and max(image.size) == 1600  # resized from 2400
        assert (root / signature.path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_a_resent_action_is_applied_once(db: Database) -> None:
    async with field_app(db.settings) as field:
        _request_id, order_id, token = await field.dispatched()
        first = await field.act(token, {"action_id": "same-id-0001", "kind": "accept"})
        again = await field.act(token, {"action_id": "same-id-0001", "kind": "accept"})
        assert (first[0], again[0]) == (201, 200)
        assert again[1]["duplicate"] is True and again[1]["state"] == "accepted"
        for _ in range(2):
            status, body = await field.photo(token, jpeg(800, 600), "photo-id-0001")
            assert status in (200, 201) and body["photos"] == 1
        assert len(await _files(field, order_id)) == 1
        reused = await field.act(token, {"action_id": "same-id-0001", "kind": "note", "text": "x"})
        assert reused[0] == 409 and reused[1]["error_id"] == "field_action_id_reused"
        async with field.db.transaction() as s:
            accepts = (
                await s.scalars(
                    select(Transition).where(
                        Transition.entity_id == order_id, Transition.action == "accept"
                    )
                )
            ).all()
        assert len(accepts) == 1


async def test_bad_links_and_bad_input_change_nothing(db: Database) -> None:
    async with field_app(db.settings) as field:
        _request_id, order_id, token = await field.dispatched()
        tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        status, page = await field.get(f"/m/{tampered}", headers=HTML)
        assert status == 403 and "链接无效" in page
        status, body = await field.act(tampered, {"action_id": "bad-link-01", "kind": "accept"})
        assert (status, body["error_id"]) == (403, "field_link_invalid")
        other_order = field.services.ctx.links
        assert other_order is not None
        forged = other_order.__class__("another-secret-0123456", field.base, other_order.max_age)
        status, body = await field.act(
            forged.token(order_id, field.world.tech, field.services.ctx.clock()),
            {"action_id": "bad-link-02", "kind": "accept"},
        )
        assert (status, body["error_id"]) == (403, "field_link_invalid")
        assert len(await field.audits("field_link_refused")) == 3

        checks = [
            ({"action_id": "bad-kind-01", "kind": "explode"}, 422, "unknown_field_action"),
            ({"action_id": "early-arr-1", "kind": "arrive"}, 409, "illegal_work_order_transition"),
            ({"action_id": "short", "kind": "accept"}, 422, "validation_failed"),
            ({"action_id": "no-reason-1", "kind": "decline"}, 422, "reason_required"),
        ]
        for body, want_status, error_id in checks:
            status, reply = await field.act(token, body)
            assert (status, reply["error_id"]) == (want_status, error_id), body
        status, reply = await field.photo(token, jpeg(), "photo-early-1")
        assert (status, reply["error_id"]) == (409, "illegal_work_order_transition")

        assert (await field.act(token, {"action_id": "accept-ok-1", "kind": "accept"}))[0] == 201
        status, reply = await field.photo(token, b"%PDF-1.4 not an image", "photo-pdf-01")
        assert (status, reply["error_id"]) == (415, "invalid_image")
        status, reply = await field.photo(token, b"\0" * (9 * 1024 * 1024), "photo-big-01")
        assert (status, reply["error_id"]) == (413, "upload_too_large")
        status, reply = await field.act(token, {"action_id": "no-sign-01", "kind": "complete"})
        assert (status, reply["error_id"]) == (422, "signature_required")
        async with field.http.post(
            f"{field.base}/m/{token}/actions", data="action_id=form-post-1&kind=accept"
        ) as response:
            assert response.status == 422
        assert await field.count(FieldAction) == 1  # only the accept
        assert await _files(field, order_id) == []
        root = Path(db.settings.var_dir) / "field_files"
        assert not root.exists() or not any(p.is_file() for p in root.rglob("*"))
        assert (await _order(field, order_id)).state == "accepted"


async def test_an_expired_link_is_refused(db: Database) -> None:
    async with field_app(db.settings) as field:
        _request_id, order_id, _token = await field.dispatched()
        links = field.services.ctx.links
        assert links is not None
        from datetime import timedelta

        old = links.token(
            order_id, field.world.tech, field.services.ctx.clock() - timedelta(days=4)
        )
        status, page = await field.get(f"/m/{old}", headers=HTML)
        assert status == 410 and "链接已过期" in page
        status, body = await field.act(old, {"action_id": "expired-001", "kind": "accept"})
        assert (status, body["error_id"]) == (410, "field_link_expired")
        assert (await _order(field, order_id)).state == "assigned"


async def test_only_the_mobile_prefix_skips_the_login(db: Database) -> None:
    async with field_app(db.settings) as field:
        _request_id, order_id, token = await field.dispatched()
        assert (await field.get(f"/m/{token}/state"))[0] == 200  # no session, no password
        for path in (f"/api/work-orders/{order_id}/report", "/mx", "/api/tickets/1"):
            status, _ = await field.get(path)
            assert status in (401, 405), path
        status, _ = await field.get("/field/files/1")
        assert status == 401
        # Another technician's link to this order opens nothing.
        links = field.services.ctx.links
        assert links is not None
        theirs = links.token(order_id, field.world.tech2, field.services.ctx.clock())
        status, body = await field.act(theirs, {"action_id": "not-mine-01", "kind": "accept"})
        assert (status, body["error_id"]) == (403, "not_your_work_order")


async def test_photos_on_the_desktop_need_permission_and_are_audited(db: Database) -> None:
    async with field_app(db.settings) as field:
        request_id, order_id, token = await field.dispatched()
        await field.act(token, {"action_id": "desk-acc-01", "kind": "accept"})
        await field.photo(token, jpeg(1200, 900), "desk-pho-01")
        await field.act(token, {"action_id": "desk-note-1", "kind": "note", "text": "左前轮"})
        (photo,) = await _files(field, order_id)

        await field.login("agent1")
        status, page = await field.get(f"/tickets/{request_id}", headers=HTML)
        assert status == 200
        assert f'src="/field/files/{photo.id}"' in page and "左前轮" in page
        async with field.http.get(f"{field.base}/field/files/{photo.id}") as response:
            assert response.status == 200 and response.content_type == "image/jpeg"
            assert hashlib.sha256(await response.read()).hexdigest() == photo.sha256
        (viewed,) = await field.audits("field_file_viewed")
        assert viewed.object_id == str(photo.id) and viewed.user_id == field.world.agent

        await field.login("tech2")  # not on this order
        status, _ = await field.get(f"/field/files/{photo.id}")
        assert status == 403
        denied = await field.audits("access_denied")
        assert denied[-1].object_type == "field_file"
