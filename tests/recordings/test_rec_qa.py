"""QA scorecards: admin criteria, weighted 0-100 scores, pinned comments, immutable reviews
with linked amendments, agents seeing only their own scores."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from rec_world import RecWorld, login_as

from recordings.errors import QaConflict
from recordings.models import QaReview


async def make_criteria(client: TestClient[Any, Any]) -> list[int]:
    token = await login_as(client, "admin1")
    ids = []
    for name, weight in (("开场白规范", 30), ("问题解决", 70)):
        response = await client.post(
            "/api/qa/criteria", json={"name": name, "weight": weight},
            headers={"X-CSRF-Token": token},
        )  # fmt: skip
        assert response.status == 201, await response.text()
        ids.append((await response.json())["id"])
    return ids


async def test_review_amendment_chain_and_agent_visibility(
    rec_client: TestClient[Any, Any], rec_world: RecWorld
) -> None:
    first, second = await make_criteria(rec_client)
    rid = rec_world.recordings["east"]
    token = await login_as(rec_client, "sup_east")
    headers = {"X-CSRF-Token": token}
    body = {
        "scores": {str(first): 100, str(second): 50},
        "comments": [{"at": 2.5, "text": "没有核实车架号"}, {"at": 0.5, "text": "问候规范"}],
        "summary": "整体良好",
    }
    response = await rec_client.post(f"/api/recordings/{rid}/reviews", json=body, headers=headers)
    assert response.status == 201, await response.text()
    review = await response.json()
    assert review["score"] == 65.0 and review["version"] == 1
    assert [c["at"] for c in review["comments"]] == [0.5, 2.5]
    again = await rec_client.post(f"/api/recordings/{rid}/reviews", json=body, headers=headers)
    assert again.status == 409  # a second v1: amend instead
    amended = await rec_client.post(
        f"/api/recordings/{rid}/reviews",
        json={**body, "scores": {str(first): 80, str(second): 80}, "amends_id": review["id"]},
        headers=headers,
    )
    assert amended.status == 201
    assert (await amended.json())["version"] == 2
    fork = await rec_client.post(
        f"/api/recordings/{rid}/reviews", json={**body, "amends_id": review["id"]}, headers=headers
    )
    assert fork.status == 409
    out_of_range = await rec_client.post(
        f"/api/recordings/{rid}/reviews",
        json={"scores": {str(first): 101, str(second): 1}}, headers=headers,
    )  # fmt: skip
    assert out_of_range.status == 422

    await login_as(rec_client, "agent_east")
    mine = await (await rec_client.get("/api/qa/mine")).json()
    assert [r["version"] for r in mine["reviews"]] == [2, 1]
    detail = await (await rec_client.get(f"/api/recordings/{rid}")).json()
    assert [r["score"] for r in detail["reviews"]] == [65.0, 80.0]
    token = await login_as(rec_client, "agent_east")
    refused = await rec_client.post(
        f"/api/recordings/{rid}/reviews", json=body, headers={"X-CSRF-Token": token}
    )
    assert refused.status == 403

    await login_as(rec_client, "agent_north")
    theirs = await (await rec_client.get("/api/qa/mine")).json()
    assert theirs["reviews"] == []


async def test_a_submitted_review_cannot_be_changed_even_directly(
    rec_client: TestClient[Any, Any], rec_world: RecWorld
) -> None:
    first, second = await make_criteria(rec_client)
    token = await login_as(rec_client, "admin1")
    rid = rec_world.recordings["north"]
    response = await rec_client.post(
        f"/api/recordings/{rid}/reviews",
        json={"scores": {str(first): 10, str(second): 20}}, headers={"X-CSRF-Token": token},
    )  # fmt: skip
    review_id = (await response.json())["id"]
    with pytest.raises(QaConflict):
        async with rec_world.db.transaction() as session:
            row = await session.get(QaReview, review_id)
            assert row is not None
            row.score = 100.0
    with pytest.raises(QaConflict):
        async with rec_world.db.transaction() as session:
            row = await session.get(QaReview, review_id)
            await session.delete(row)
