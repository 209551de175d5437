"""Run every `benchmarks/bench_*.py` module's `main()`, in name order, after naming the machine."""

from __future__ import annotations

import importlib
import pkgutil

from rich.console import Console

import benchmarks
from benchmarks.machine import describe_machine


def main() -> None:
    console = Console(width=max(Console().width, 120))
    console.print(f"[bold]Machine:[/bold] {describe_machine()}")
    names = sorted(
        module.name
        for module in pkgutil.iter_modules(benchmarks.__path__)
        if module.name.startswith("bench_")
    )
    for name in names:
        console.rule(name)
        importlib.import_module(f"benchmarks.{name}").main()


if __name__ == "__main__":
    main()
