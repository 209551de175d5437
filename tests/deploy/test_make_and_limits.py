"""Small promises between files: the `make` targets messages name, Redis memory vs its limit."""

from __future__ import annotations

import re

import yaml

from .tools import REPO


def _make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.MULTILINE))


def test_every_make_target_the_code_and_docs_name_exists():
    targets = _make_targets()
    named: dict[str, str] = {}
    for path in [*(REPO / "src").rglob("*.py"), *(REPO / "docs").glob("*.md"), REPO / "README.md"]:
        for target in re.findall(r"[`(]make ([a-z][\w-]*)", path.read_text(encoding="utf-8")):
            named[target] = str(path.relative_to(REPO))
    assert named, "nothing names a make target"
    missing = {t: where for t, where in named.items() if t not in targets}
    assert not missing, missing


def _bytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)\s*([A-Za-z]*)", size.strip()).groups()
    scale = {"": 1, "kb": 1000, "mb": 10**6, "gb": 10**9, "ki": 2**10, "mi": 2**20, "gi": 2**30}
    return int(number) * scale[unit.lower()]


def test_redis_maxmemory_leaves_room_for_an_aof_rewrite_fork():
    """The rewrite forks: copy-on-write pages of a busy queue can double the memory in use."""
    config = yaml.safe_load((REPO / "k8s/base/configmap-redis.yaml").read_text())
    (maxmemory,) = re.findall(r"^maxmemory (\S+)$", config["data"]["valkey.conf"], re.MULTILINE)
    statefulset = yaml.safe_load((REPO / "k8s/base/statefulset-redis.yaml").read_text())
    (container,) = [
        c for c in statefulset["spec"]["template"]["spec"]["containers"] if c["name"] == "redis"
    ]
    limit = container["resources"]["limits"]["memory"]
    assert _bytes(maxmemory) <= _bytes(limit) / 2, (maxmemory, limit)
