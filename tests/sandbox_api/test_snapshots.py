"""Snapshots over REST: create, list, compare with the current files (unified diff), restore."""

from __future__ import annotations

import httpx

from tests.sandbox_api.helpers import execute, new_sandbox
from tests.support import UserHandle


async def test_snapshot_diff_and_restore(client: httpx.AsyncClient, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice)
    await execute(client, alice, sid, "printf 'one\\ntwo\\nthree\\n' > app.txt && echo gone > old.txt")
    created = await client.post(
        f"/api/sandboxes/{sid}/snapshots", json={"description": "before edits"}, headers=alice.headers
    )
    assert created.status_code == 201, created.text
    snap = created.json()
    assert snap["description"] == "before edits" and snap["size_bytes"] > 0

    await execute(client, alice, sid, "printf 'one\\n2\\nthree\\n' > app.txt && rm old.txt && echo new > added.txt")
    diff = await client.get(f"/api/sandboxes/{sid}/snapshots/{snap['snapshot_id']}/diff", headers=alice.headers)
    assert diff.status_code == 200
    text = diff.json()["diff"]
    assert "--- a/app.txt\n+++ b/app.txt\n" in text and "-two\n+2\n" in text
    assert "--- a/old.txt\n+++ /dev/null\n" in text and "-gone\n" in text
    assert "--- /dev/null\n+++ b/added.txt\n" in text and "+new\n" in text

    restored = await client.post(f"/api/sandboxes/{sid}/snapshots/{snap['snapshot_id']}/restore", headers=alice.headers)
    assert restored.status_code == 200, restored.text
    checkpoint = restored.json()["checkpoint"]
    assert (
        restored.json()["snapshot"]["snapshot_id"] == snap["snapshot_id"]
        and checkpoint["description"] == "restore checkpoint"
    )
    assert (await execute(client, alice, sid, "cat app.txt old.txt; ls"))[
        "output"
    ] == "one\ntwo\nthree\ngone\napp.txt\nold.txt\n"
    unchanged = await client.get(f"/api/sandboxes/{sid}/snapshots/{snap['snapshot_id']}/diff", headers=alice.headers)
    assert unchanged.json()["diff"] == ""
    # The checkpoint holds the edits the restore replaced.
    back = await client.get(f"/api/sandboxes/{sid}/snapshots/{checkpoint['snapshot_id']}/diff", headers=alice.headers)
    assert "+two\n" in back.json()["diff"] and "-2\n" in back.json()["diff"]

    listed = (await client.get(f"/api/sandboxes/{sid}/snapshots", headers=alice.headers)).json()["snapshots"]
    assert [s["snapshot_id"] for s in listed] == [snap["snapshot_id"], checkpoint["snapshot_id"]]
    got = await client.get(f"/api/sandboxes/{sid}/snapshots/{snap['snapshot_id']}", headers=alice.headers)
    assert got.json()["description"] == "before edits"
    deleted = await client.delete(f"/api/sandboxes/{sid}/snapshots/{checkpoint['snapshot_id']}", headers=alice.headers)
    assert deleted.status_code == 200
    assert len((await client.get(f"/api/sandboxes/{sid}/snapshots", headers=alice.headers)).json()["snapshots"]) == 1


async def test_unknown_snapshots_are_404(client: httpx.AsyncClient, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice)
    for method, suffix in [("GET", "diff"), ("POST", "restore"), ("GET", ""), ("DELETE", "")]:
        response = await client.request(
            method, f"/api/sandboxes/{sid}/snapshots/nope/{suffix}".rstrip("/"), headers=alice.headers
        )
        assert response.status_code == 404, (method, suffix, response.text)
    long = await client.post(f"/api/sandboxes/{sid}/snapshots", json={"description": "x" * 2000}, headers=alice.headers)
    assert long.status_code == 422
