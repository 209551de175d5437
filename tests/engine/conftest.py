"""Shared data for the data-engine tests: the shipped PubTabNet images and their ground truth."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from tests.support.vlm_stub import StubRequest

from trivia.dataset import pubtabnet_html
from trivia.engine.images import image_key
from trivia.engine.prompts import recognition_format

PUBTABNET = Path(__file__).resolve().parents[2] / "examples" / "pubtabnet"


@pytest.fixture(scope="session")
def pubtabnet_dir() -> Path:
    return PUBTABNET


@pytest.fixture(scope="session")
def image_paths() -> list[Path]:
    """The 20 shipped table images, sorted."""
    return sorted((PUBTABNET / "images").glob("*.png"))


@pytest.fixture(scope="session")
def truth_by_key() -> dict[str, str]:
    """Image SHA-256 → ground-truth HTML (from `examples.jsonl` via `pubtabnet_html`)."""
    out = {}
    for line in (PUBTABNET / "examples.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        out[image_key(PUBTABNET / "images" / record["filename"])] = pubtabnet_html(record["html"])
    return out


@pytest.fixture(scope="session")
def official(pubtabnet_dir):
    gt = json.loads((pubtabnet_dir / "sample_gt.json").read_text())
    pred = json.loads((pubtabnet_dir / "sample_pred.json").read_text())
    expected = json.loads((pubtabnet_dir / "sample_expected_teds.json").read_text())
    return gt, pred, expected


def _sample_image(name: str) -> Image.Image:
    """A small image that shows the sample's name and differs for every name."""
    shade = zlib.crc32(name.encode()) & 0xFFFFFF
    image = Image.new("RGB", (200, 40), (shade >> 16, (shade >> 8) & 255, shade & 255))
    ImageDraw.Draw(image).text((4, 12), name, fill=(255, 255, 255))
    return image


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory, official):
    """The 20 official samples as a dataset file (generated images, one per sample, with its
    ground truth as `solution`), and a stub responder that answers a recognition prompt about a
    sample's image with the official sample prediction, and the images (for the stub)."""
    gt, pred, _ = official
    root = tmp_path_factory.mktemp("samples")
    (root / "images").mkdir()
    rows, by_key, paths = [], {}, []
    for name, entry in gt.items():
        path = root / "images" / name
        _sample_image(name).save(path)
        paths.append(path)
        by_key[image_key(path)] = pred[name]
        rows.append(
            {
                "messages": [{"role": "user", "content": "<image>"}],
                "images": [f"images/{name}"],
                "qa_pairs": [{"question": "q", "answer": "a"}],
                "solution": entry["html"],
            }
        )
    dataset = root / "val.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return dataset, _responder(by_key), paths


def _responder(by_key: dict[str, str]) -> Callable[[StubRequest], str]:
    def respond(request: StubRequest) -> str:
        if recognition_format(request.prompt) is None or len(request.image_keys) != 1:
            return ""
        return by_key.get(request.image_keys[0], "")

    return respond
