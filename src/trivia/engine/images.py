"""Images for the VLM: finding them, keying them, and sizing them as training does.

Sizing follows Qwen2.5-VL's `smart_resize`, which ms-swift applies to every training image
(`MAX_PIXELS` / `MIN_PIXELS`): both sides become multiples of 28 (the vision tower's 14-pixel
patches merged 2×2), the aspect ratio is kept as closely as that allows, and the area is brought
within [min_pixels, max_pixels]. Resizing here, before sending, means the server sees the image
the policy saw in training whatever its own processor limits are.

A resized image is re-encoded (PNG, or JPEG at quality 95 for JPEG sources); an image already
at its target size is sent as it is.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

PATCH_FACTOR = 28
DEFAULT_MAX_PIXELS = 1280 * 28 * 28
DEFAULT_MIN_PIXELS = 256 * 28 * 28
_MAX_ASPECT = 200
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
_JPEG_QUALITY = 95


def image_bytes(image: Path | bytes) -> bytes:
    """The encoded bytes of `image` (a file, or bytes as they are)."""
    return image if isinstance(image, bytes) else Path(image).read_bytes()


def image_key(image: Path | bytes) -> str:
    """SHA-256 (hex) of the image's encoded bytes: names the image in resume keys and stubs."""
    return hashlib.sha256(image_bytes(image)).hexdigest()


def smart_resize(
    height: int,
    width: int,
    *,
    factor: int = PATCH_FACTOR,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[int, int]:
    """(height, width) as Qwen2.5-VL's processor resizes them; see the module docstring.

    Each side is rounded to the nearest multiple of `factor` (at least `factor`); an area over
    `max_pixels` is scaled down and floored to multiples, one under `min_pixels` scaled up and
    ceiled. Raises ValueError for an aspect ratio over 200 or limits that admit no image.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image has no pixels: {width}×{height}")
    if min_pixels > max_pixels or max_pixels < factor * factor:
        raise ValueError(f"pixel limits [{min_pixels}, {max_pixels}] admit no image")
    if max(height, width) / min(height, width) > _MAX_ASPECT:
        raise ValueError(f"aspect ratio over {_MAX_ASPECT}: {width}×{height}")
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def image_data_url(
    image: Path | bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_pixels: int = DEFAULT_MIN_PIXELS,
) -> str:
    """A `data:image/...;base64,` URL of `image` sized by `smart_resize` within the limits.

    Raises ValueError when the bytes are not an image Pillow can read.
    """
    from PIL import Image, UnidentifiedImageError

    data = image_bytes(image)
    try:
        with Image.open(io.BytesIO(data)) as opened:
            width, height = opened.size
            fmt = opened.format
            height_to, width_to = smart_resize(
                height, width, min_pixels=min_pixels, max_pixels=max_pixels
            )
            if (width_to, height_to) == (width, height) and fmt in ("PNG", "JPEG"):
                return _data_url(data, fmt)
            resized = _flat(opened).resize((width_to, height_to), Image.Resampling.BICUBIC)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"not a readable image: {exc}") from None
    out = io.BytesIO()
    if fmt == "JPEG":
        resized.save(out, "JPEG", quality=_JPEG_QUALITY)
    else:
        resized.save(out, "PNG")
        fmt = "PNG"
    return _data_url(out.getvalue(), fmt)


def _flat(image: PILImage) -> PILImage:
    """RGB or greyscale; transparency over white, as Qwen's image loader does."""
    from PIL import Image

    if image.mode in ("RGB", "L"):
        return image
    if image.mode == "P" or image.mode in ("LA", "PA", "RGBa", "La", "RGBA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _data_url(data: bytes, fmt: str) -> str:
    mime = "image/jpeg" if fmt == "JPEG" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def decode_data_url(url: str) -> bytes:
    """The bytes of a base64 `data:image/...` URL; raises ValueError for anything else."""
    head, sep, payload = url.partition(",")
    if not sep or not head.startswith("data:image/") or not head.endswith(";base64"):
        raise ValueError("not a base64 data:image URL")
    try:
        return base64.b64decode(payload, validate=True)
    except ValueError as exc:
        raise ValueError(f"bad base64 in data URL: {exc}") from None


def find_images(source: Path) -> list[Path]:
    """Images to process: a folder's image files (recursively, sorted), or a list file's lines.

    A list file holds one path per line, relative to the list's folder unless absolute; blank
    lines and lines starting with `#` are skipped. Paths are returned absolute, without repeats.
    """
    source = Path(source)
    if source.is_dir():
        found = [p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
        paths = sorted(p.resolve() for p in found if p.is_file())
    elif source.is_file():
        paths = []
        for line in source.read_text(encoding="utf-8").splitlines():
            entry = line.strip()
            if entry and not entry.startswith("#"):
                path = Path(entry)
                paths.append((path if path.is_absolute() else source.parent / path).resolve())
    else:
        raise FileNotFoundError(f"no such folder or list file: {source}")
    return list(dict.fromkeys(paths))
