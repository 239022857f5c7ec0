"""Files through the live server: several uploads, listings, text and binary content, deletion,
path traversal refused, oversized uploads refused, archives that open."""

from __future__ import annotations

import io
import tarfile
import zipfile

import httpx

from tests.sandbox_api.helpers import execute, new_sandbox
from tests.sandbox_api.serve import MAX_UPLOAD
from tests.support import UserHandle

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


async def upload(
    client: httpx.AsyncClient, user: UserHandle, sandbox_id: str, files: dict[str, bytes]
) -> httpx.Response:
    parts = [("file", (path.rsplit("/", 1)[-1], data, "application/octet-stream")) for path, data in files.items()]
    fields = {"path": list(files)}  # paired with the file parts in order
    return await client.post(f"/api/sandboxes/{sandbox_id}/files", files=parts, data=fields, headers=user.headers)


async def test_upload_several_files_then_list_tree_and_read(client: httpx.AsyncClient, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice)
    sent = {
        "src/app.py": b"print('hi')\n",
        "src/lib/util.py": b"X = 1\n",
        "logo.png": PNG,
        "/workspace/README.md": b"# demo\n",
    }
    response = await upload(client, alice, sid, sent)
    assert response.status_code == 200, response.text
    assert sorted(f["path"] for f in response.json()["files"]) == [
        "README.md",
        "logo.png",
        "src/app.py",
        "src/lib/util.py",
    ]

    listing = (await client.get(f"/api/sandboxes/{sid}/files", headers=alice.headers)).json()
    assert [(f["name"], f["is_dir"]) for f in listing["files"]] == [
        ("src", True),
        ("README.md", False),
        ("logo.png", False),
    ]
    nested = (await client.get(f"/api/sandboxes/{sid}/files", params={"path": "src/lib"}, headers=alice.headers)).json()
    assert [f["path"] for f in nested["files"]] == ["src/lib/util.py"]

    tree = (await client.get(f"/api/sandboxes/{sid}/files/tree", headers=alice.headers)).json()
    assert tree["entries"] == 6 and not tree["truncated"]
    src = next(c for c in tree["root"]["children"] if c["name"] == "src")
    assert {c["name"] for c in src["children"]} == {"app.py", "lib"}

    text = await client.get(f"/api/sandboxes/{sid}/files/content", params={"path": "src/app.py"}, headers=alice.headers)
    assert text.status_code == 200 and text.content == b"print('hi')\n"
    assert text.headers["content-type"].startswith("text/x-python") and "charset=utf-8" in text.headers["content-type"]
    binary = await client.get(f"/api/sandboxes/{sid}/files/content", params={"path": "logo.png"}, headers=alice.headers)
    assert binary.content == PNG and binary.headers["content-type"] == "image/png"
    assert binary.headers["x-content-type-options"] == "nosniff"

    # What the API wrote, commands see (and the other way round).
    ran = await execute(client, alice, sid, "cat src/lib/util.py && echo made > out.bin")
    assert ran["output"] == "X = 1\n" and ran["exit_code"] == 0
    made = await client.get(
        f"/api/sandboxes/{sid}/files/content", params={"path": "/workspace/out.bin"}, headers=alice.headers
    )
    assert made.content == b"made\n"


async def test_delete_files_by_body_and_by_query(client: httpx.AsyncClient, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice)
    assert (await upload(client, alice, sid, {"a.txt": b"a", "b.txt": b"b", "d/c.txt": b"c"})).status_code == 200
    gone = await client.request(
        "DELETE", f"/api/sandboxes/{sid}/files", json={"paths": ["a.txt", "d", "missing"]}, headers=alice.headers
    )
    assert gone.status_code == 200 and sorted(gone.json()["deleted"]) == ["a.txt", "d"]
    gone = await client.delete(f"/api/sandboxes/{sid}/files", params={"path": "b.txt"}, headers=alice.headers)
    assert gone.json()["deleted"] == ["b.txt"]
    assert (await client.get(f"/api/sandboxes/{sid}/files", headers=alice.headers)).json()["files"] == []
    empty = await client.request("DELETE", f"/api/sandboxes/{sid}/files", json={"paths": []}, headers=alice.headers)
    assert empty.status_code == 422


async def test_path_traversal_is_refused_with_422(client: httpx.AsyncClient, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice)
    await execute(client, alice, sid, "ln -s /etc escape && ln -s ../../.. up")
    for path in ("../../../etc/passwd", "/etc/passwd", "escape/passwd", "up/sandbox.json", "a/../../x"):
        read = await client.get(f"/api/sandboxes/{sid}/files/content", params={"path": path}, headers=alice.headers)
        assert read.status_code == 422, (path, read.text)
        assert "root:" not in read.text
    listed = await client.get(f"/api/sandboxes/{sid}/files", params={"path": "escape"}, headers=alice.headers)
    assert listed.status_code == 422
    written = await upload(client, alice, sid, {"ok.txt": b"fine", "../evil.txt": b"nope"})
    assert written.status_code == 422, written.text
    names = [
        f["name"] for f in (await client.get(f"/api/sandboxes/{sid}/files", headers=alice.headers)).json()["files"]
    ]
    assert "ok.txt" not in names  # every path is checked before the first file is written
    deleted = await client.request(
        "DELETE", f"/api/sandboxes/{sid}/files", json={"paths": ["../"]}, headers=alice.headers
    )
    assert deleted.status_code == 422
    cwd = await client.post(
        f"/api/sandboxes/{sid}/execute", json={"command": "pwd", "cwd": "../.."}, headers=alice.headers
    )
    assert cwd.status_code == 422


async def test_oversized_upload_is_413(client: httpx.AsyncClient, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice)
    limit = MAX_UPLOAD
    too_big = await upload(client, alice, sid, {"big.bin": b"x" * (limit + 1)})
    assert too_big.status_code == 413, too_big.text
    together = await upload(client, alice, sid, {"a.bin": b"x" * (limit // 2 + 10), "b.bin": b"y" * (limit // 2 + 10)})
    assert together.status_code == 413
    way_too_big = await upload(client, alice, sid, {"huge.bin": b"z" * (limit * 4)})
    assert way_too_big.status_code == 413  # refused by the body limit before it is read
    assert (await client.get(f"/api/sandboxes/{sid}/files", headers=alice.headers)).json()["files"] == []
    fits = await upload(client, alice, sid, {"fits.bin": b"x" * (limit - 1024)})
    assert fits.status_code == 200


async def test_download_archive_tar_gz_and_zip(client: httpx.AsyncClient, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice)
    await upload(client, alice, sid, {"index.html": b"<h1>hi</h1>", "assets/logo.png": PNG})
    await execute(client, alice, sid, "ln -s /etc/passwd link")

    tar = await client.get(f"/api/sandboxes/{sid}/download-archive", headers=alice.headers)
    assert tar.status_code == 200 and tar.headers["content-type"] == "application/gzip"
    assert "attachment" in tar.headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(tar.content), mode="r:gz") as archive:
        assert archive.extractfile("assets/logo.png").read() == PNG  # type: ignore[union-attr]
        assert archive.getmember("link").issym()  # stored as a link, the target is not read

    # ?token= lets a plain browser link download it.
    zipped = await client.get(
        f"/api/sandboxes/{sid}/download-archive", params={"format": "zip", "token": alice.access_token}
    )
    assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        assert archive.read("index.html") == b"<h1>hi</h1>"
        assert "assets/logo.png" in archive.namelist()
    bad = await client.get(f"/api/sandboxes/{sid}/download-archive", params={"format": "rar"}, headers=alice.headers)
    assert bad.status_code == 422
