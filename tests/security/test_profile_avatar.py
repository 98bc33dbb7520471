"""Avatars are checked by content: a renamed PDF, a polyglot, a decompression bomb and a 30 MB
image are refused with a clear error, through the gateway and straight on the bus."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import httpx
import pytest
from PIL import Image

from contracts import AtriumError
from contracts.profile import AVATAR_SET
from services.kit.client import call
from tests.conftest import CORPUS, AppUser, Stack

PDF = CORPUS / "public" / "sample-files" / "001-trivial" / "minimal-document.pdf"


def png(size: tuple[int, int] = (300, 300)) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise(size, 40).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def a_pdf() -> bytes:
    path = PDF if PDF.exists() else sorted(Path(CORPUS).rglob("*.pdf"))[1]
    data = path.read_bytes()
    assert data.startswith(b"%PDF")
    return data


async def put_avatar(http: httpx.AsyncClient, user: AppUser, data: bytes, content_type: str = "image/png"):
    return await http.put(
        "/profile/avatar", content=data, headers={**user.headers, "content-type": content_type}
    )


async def test_a_renamed_pdf_is_refused(http: httpx.AsyncClient, new_user: AppUser) -> None:
    r = await put_avatar(http, new_user, a_pdf())
    assert r.status_code == 415, r.text
    err = r.json()["error"]
    assert err["code"] == "unsupported" and "PDF" in err["message"] and "PNG, JPEG or WebP" in err["message"]
    assert (await http.get("/profile", headers=new_user.headers)).json()["has_avatar"] is False


@pytest.mark.parametrize("tail", ["pdf", "zip"])
async def test_a_polyglot_image_is_refused(http: httpx.AsyncClient, new_user: AppUser, tail: str) -> None:
    # A real, fully decodable PNG with another file appended after its end.
    extra = a_pdf()[:50_000] if tail == "pdf" else b"PK\x03\x04" + bytes(range(256)) * 40
    image = png()
    assert len(image) > 2048  # so the check that catches it is the end-of-image one, not the header sniff
    r = await put_avatar(http, new_user, image + extra)
    assert r.status_code == 422, r.text
    assert "after its end" in r.json()["error"]["message"]


async def test_a_pdf_hidden_in_the_first_bytes_is_refused(http: httpx.AsyncClient, new_user: AppUser) -> None:
    # A PDF reader accepts %PDF- anywhere in the first kilobyte; such a file is refused even if it decodes.
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("c", "%PDF-1.4 1 0 obj")
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, "PNG", pnginfo=info)
    r = await put_avatar(http, new_user, buf.getvalue())
    assert r.status_code == 415 and "PDF" in r.json()["error"]["message"]


async def test_a_30_mb_image_is_refused_before_it_reaches_the_bus(
    http: httpx.AsyncClient, new_user: AppUser
) -> None:
    buf = io.BytesIO()
    Image.frombytes("RGB", (3200, 3200), bytes(3200 * 3200 * 3)).save(buf, "PNG", compress_level=0)
    big = buf.getvalue()
    assert len(big) > 30_000_000
    r = await put_avatar(http, new_user, big)
    assert r.status_code == 413, r.text
    assert "2 MB" in r.json()["error"]["message"]

    async def chunks():  # no Content-Length: the gateway must stop reading at the limit itself
        for i in range(0, len(big), 1 << 20):
            yield big[i : i + (1 << 20)]

    r = await http.put("/profile/avatar", content=chunks(), headers=new_user.headers)
    assert r.status_code == 413, r.text


async def test_oversize_and_bomb_straight_on_the_bus(stack: Stack, new_user: AppUser) -> None:
    with pytest.raises(AtriumError) as err:
        await call(
            stack.nc,
            AVATAR_SET,
            {"data": base64.b64encode(b"\x89PNG" + bytes(3 * 1024 * 1024))},
            token=new_user.access_token,
        )
    assert err.value.code == "too_large"
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")  # 400 megapixels in ~50 kB
    with pytest.raises(AtriumError) as err:
        await call(
            stack.nc, AVATAR_SET, {"data": base64.b64encode(bomb.getvalue())}, token=new_user.access_token
        )
    assert err.value.code == "invalid" and "decompression bomb" in err.value.message
    with pytest.raises(AtriumError) as err:
        await call(stack.nc, AVATAR_SET, {"data": base64.b64encode(png()[:400])}, token=new_user.access_token)
    assert err.value.code in ("invalid", "unsupported")


async def test_avatar_needs_a_valid_token(stack: Stack, http: httpx.AsyncClient) -> None:
    assert (await http.put("/profile/avatar", content=png())).status_code == 401
    with pytest.raises(AtriumError) as err:
        await call(stack.nc, AVATAR_SET, {"data": base64.b64encode(png())}, token="not-a-token")
    assert err.value.code == "unauthenticated"
