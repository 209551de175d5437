"""Launch configs: a YAML file in, the ``swift rlhf`` command and its environment out.

A config has three sections, after a comment that says how to run it::

    env:     variables for the run (MAX_PIXELS, NPROC_PER_NODE, ...); ones already set win
    plugin:  this project's options (rejection_sample, rejection_tag_tail, reward_url, ...)
    swift:   ms-swift flags, spelled as ``swift rlhf`` spells them (without ``--``)

ms-swift refuses flags it does not know, so ``plugin`` options travel as ``TRIVIA_<NAME>``
environment variables; ``--rejection_*`` and the other plugin flags may also be given after
``--`` on the command line and are routed the same way. Multi-node runs use the usual torchrun
variables (``NNODES``, ``NODE_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), which ms-swift turns
into torchrun's flags (``torchrun_argv`` shows the command it will run).
``${VAR}`` in a string value is replaced from the environment.

Pure: builds the command; running it is the caller's business.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trivia.trainer.options import PLUGIN_FLAGS
from trivia.trainer.stop_request import STOP_CALLBACK

PLUGIN_FILE = Path(__file__).with_name("plugin.py")
SECTIONS = frozenset({"env", "plugin", "swift"})
# ms-swift runs `swift rlhf` under torchrun when NPROC_PER_NODE or NNODES is set, passing these
# variables as torchrun's flags of the same name, in this order (swift/cli/main.py).
TORCHRUN_VARIABLES = ("NPROC_PER_NODE", "MASTER_PORT", "NNODES", "NODE_RANK", "MASTER_ADDR")


class ConfigError(ValueError):
    """A launch config that cannot be turned into a command."""


def load_config(path: Path) -> dict[str, Any]:
    """Read a launch config; refuse unknown sections and unknown plugin options."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from error
    if not isinstance(data, dict) or "swift" not in data:
        raise ConfigError(f"{path}: expected a mapping with a `swift:` section")
    unknown = set(data) - SECTIONS
    if unknown:
        raise ConfigError(f"{path}: unknown sections {sorted(unknown)}; use {sorted(SECTIONS)}")
    for section in SECTIONS & set(data):
        if not isinstance(data[section] or {}, dict):
            raise ConfigError(f"{path}: `{section}:` must be a mapping")
    bad = set(data.get("plugin") or {}) - PLUGIN_FLAGS
    if bad:
        raise ConfigError(f"{path}: unknown plugin options {sorted(bad)}")
    return data


def _text(value: Any, environ: Mapping[str, str]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    text = str(value)
    for name, replacement in environ.items():
        text = text.replace(f"${{{name}}}", replacement)
    return text


def _swift_args(options: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    args: list[str] = []
    for key, value in options.items():
        if value is None:
            continue
        args.append(f"--{key}")
        if isinstance(value, list):
            args.extend(_text(v, environ) for v in value)
        else:
            args.append(_text(value, environ))
    return args


def _split_extra(extra: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Plugin flags (``--rejection_sample true``) apart from ms-swift's."""
    plugin: dict[str, str] = {}
    swift: list[str] = []
    i = 0
    while i < len(extra):
        arg = extra[i]
        name, eq, inline = arg.removeprefix("--").partition("=")
        if arg.startswith("--") and name in PLUGIN_FLAGS:
            values: list[str] = [inline] if eq else []
            while not eq and i + 1 < len(extra) and not extra[i + 1].startswith("--"):
                i += 1
                values.append(extra[i])
            if not values:
                raise ConfigError(f"{arg} needs a value")
            plugin[name] = values[0] if len(values) == 1 else json.dumps(values)
        else:
            swift.append(arg)
        i += 1
    return plugin, swift


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """The command to run and the environment variables it adds."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def swift_args(self) -> list[str]:
        """What follows ``swift rlhf``: the part ms-swift's argument parser reads."""
        return self.argv[2:]

    def values(self, flag: str) -> list[str]:
        """The values given to ``flag`` (``--val_dataset``) among the swift arguments."""
        return [v for group in _flag_groups(self.swift_args) if group[0] == flag for v in group[1:]]

    def shell(self) -> str:
        """The plan as a shell command line, one variable or flag per line."""
        lines = [f"{k}={shlex.quote(v)}" for k, v in self.env.items()]
        lines.append(shlex.join(self.argv[:2]))
        lines += [shlex.join(group) for group in _flag_groups(self.swift_args)]
        return " \\\n  ".join(lines)


def _flag_groups(args: list[str]) -> list[list[str]]:
    pairs: list[list[str]] = []
    for arg in args:
        if arg.startswith("--") or not pairs:
            pairs.append([arg])
        else:
            pairs[-1].append(arg)
    return pairs


def plan_launch(
    config: Mapping[str, Any],
    extra: Sequence[str] = (),
    *,
    swift: str = "swift",
    environ: Mapping[str, str] | None = None,
) -> LaunchPlan:
    """The ``swift rlhf`` command for a loaded config, with ``extra`` arguments appended."""
    environ = dict(os.environ if environ is None else environ)
    env: dict[str, str] = {}
    for key, value in (config.get("env") or {}).items():
        env[str(key)] = environ.get(str(key), _text(value, environ))
    # Plugin options: the config, then the environment, then flags after `--` win.
    extra_plugin, extra_swift = _split_extra(extra)
    for key, value in (config.get("plugin") or {}).items():
        name = f"TRIVIA_{key.upper()}"
        if value is not None:
            env[name] = environ.get(name, _text(value, environ))
    for key, value in extra_plugin.items():
        env[f"TRIVIA_{key.upper()}"] = value
    options = dict(config["swift"])
    if options.pop("external_plugins", None) is not None:
        raise ConfigError("the plugin is added by `trivia train`; drop `external_plugins`")
    # The plugin's stop callback, after any the config names (inert unless `trivia train` runs).
    callbacks = options.pop("callbacks", None) or []
    callbacks = [callbacks] if isinstance(callbacks, str) else list(callbacks)
    options["callbacks"] = [*callbacks, *([] if STOP_CALLBACK in callbacks else [STOP_CALLBACK])]
    argv = [swift, "rlhf", *_swift_args(options, environ)]
    argv += ["--external_plugins", str(PLUGIN_FILE), *extra_swift]
    _check_nodes({**environ, **env})
    return LaunchPlan(argv=argv, env=env)


def _check_nodes(env: Mapping[str, str]) -> None:
    """A multi-node run needs every rank's place, or torchrun waits for ranks that never come."""
    try:
        nodes = int(env.get("NNODES", "1"))
        rank = int(env.get("NODE_RANK", "0"))
    except ValueError as error:
        raise ConfigError(f"NNODES and NODE_RANK must be integers: {error}") from error
    if nodes < 1 or not 0 <= rank < nodes:
        raise ConfigError(f"NODE_RANK {rank} is not a rank of NNODES {nodes} (0 to {nodes - 1})")
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if nodes > 1 and not env.get(name)]
    if missing:
        raise ConfigError(f"NNODES is {nodes}: set {' and '.join(missing)} (rank 0's address)")


def torchrun_argv(
    plan: LaunchPlan, environ: Mapping[str, str], *, python: str, script: str
) -> list[str] | None:
    """The torchrun command ms-swift runs for ``plan``; None when it runs without torchrun.

    ``python`` is the interpreter of the ``swift`` launcher, ``script`` ms-swift's
    ``swift/cli/rlhf.py``; ``environ`` is the environment ``trivia train`` starts swift in.
    """
    env = {**environ, **plan.env}
    if "NPROC_PER_NODE" not in env and "NNODES" not in env:
        return None
    flags = [part for n in TORCHRUN_VARIABLES if n in env for part in (f"--{n.lower()}", env[n])]
    return [python, "-m", "torch.distributed.run", *flags, script, *plan.swift_args]
