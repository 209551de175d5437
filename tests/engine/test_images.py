"""Image keys, Qwen2.5-VL sizing and data URLs (Pillow, no server)."""

from __future__ import annotations

import base64
import hashlib
import io

import pytest
from PIL import Image

from trivia.engine.images import (
    decode_data_url,
    find_images,
    image_data_url,
    image_key,
    smart_resize,
)


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(out, "PNG")
    return out.getvalue()


def _decoded(url: str) -> Image.Image:
    image = Image.open(io.BytesIO(decode_data_url(url)))
    image.load()
    return image


@pytest.mark.parametrize(
    ("height", "width", "limits", "expected"),
    [
        # Within the limits: each side rounded to the nearest multiple of 28.
        (500, 700, (56 * 56, 1280 * 28 * 28), (504, 700)),
        (41, 43, (28 * 28, 10**7), (28, 56)),  # 41/28 = 1.46 rounds to 1; 43/28 = 1.54 to 2
        # Too large: scaled by sqrt(h*w / max) = sqrt(2,000,000 / 250,880) = 2.8235..., floored.
        (1000, 2000, (3136, 320 * 28 * 28), (336, 700)),
        # Too small: scaled by sqrt(min / (h*w)) = sqrt(200,704 / 11,250) = 4.2238..., ceiled.
        (45, 250, (256 * 28 * 28, 1280 * 28 * 28), (196, 1064)),
    ],
)
def test_smart_resize_by_hand(height, width, limits, expected):
    low, high = limits
    assert smart_resize(height, width, min_pixels=low, max_pixels=high) == expected


def test_smart_resize_rejects_extreme_aspect_and_impossible_limits():
    with pytest.raises(ValueError, match="aspect"):
        smart_resize(10, 2100)
    with pytest.raises(ValueError, match="admit no image"):
        smart_resize(100, 100, min_pixels=10_000, max_pixels=5_000)


def test_shipped_images_are_resized_within_the_limits_and_carry_no_metadata(image_paths):
    low, high = 128 * 28 * 28, 256 * 28 * 28
    for path in image_paths:
        with Image.open(path) as original:
            width, height = original.size
        url = image_data_url(path, min_pixels=low, max_pixels=high)
        assert url.startswith("data:image/png;base64,")
        sent = _decoded(url)
        assert sent.size == smart_resize(height, width, min_pixels=low, max_pixels=high)[::-1]
        assert sent.width % 28 == 0 and sent.height % 28 == 0
        assert low <= sent.width * sent.height <= high
        assert not {k for k in sent.info if k.startswith("trivia")}  # nothing but pixels


def test_an_image_already_at_its_size_is_sent_unchanged():
    data = _png(28 * 20, 28 * 15)
    url = image_data_url(data, min_pixels=28 * 28, max_pixels=28 * 28 * 400)
    assert decode_data_url(url) == data
    assert hashlib.sha256(data).hexdigest() == image_key(data)


def test_jpeg_stays_jpeg_and_transparency_goes_over_white():
    out = io.BytesIO()
    Image.new("RGB", (300, 100), "red").save(out, "JPEG")
    url = image_data_url(out.getvalue(), min_pixels=28 * 28, max_pixels=28 * 28 * 100)
    assert url.startswith("data:image/jpeg;base64,")
    assert "comment" not in _decoded(url).info

    transparent = io.BytesIO()
    Image.new("RGBA", (100, 50), (0, 0, 0, 0)).save(transparent, "PNG")
    sent = _decoded(image_data_url(transparent.getvalue(), min_pixels=784, max_pixels=10**6))
    assert sent.mode == "RGB" and sent.getpixel((5, 5)) == (255, 255, 255)


def test_unreadable_images_and_bad_data_urls_are_value_errors():
    with pytest.raises(ValueError, match="not a readable image"):
        image_data_url(b"not an image at all")
    for url in ("http://x/y.png", "data:text/plain;base64,aGk=", "data:image/png;base64,@@@"):
        with pytest.raises(ValueError):
            decode_data_url(url)
    assert decode_data_url("data:image/png;base64," + base64.b64encode(b"ab").decode()) == b"ab"


def test_find_images_reads_folders_and_lists(tmp_path, image_paths):
    assert find_images(image_paths[0].parent) == image_paths
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "t.PNG").write_bytes(_png(30, 30))
    (tmp_path / "notes.txt").write_text("not an image")
    assert find_images(tmp_path) == [(nested / "t.PNG").resolve()]
    listing = tmp_path / "list.txt"
    listing.write_text(f"# a comment\n\na/b/t.PNG\n{image_paths[0]}\na/b/t.PNG\n")
    assert find_images(listing) == [(nested / "t.PNG").resolve(), image_paths[0]]
    with pytest.raises(FileNotFoundError):
        find_images(tmp_path / "missing")
