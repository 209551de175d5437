"""Servers and fixtures shared by the tests and the benchmarks (not part of the package).

- `openai_stub`: a scriptable OpenAI-compatible chat server (latency, slots, failures, records);
- `valkey`: a valkey-server child process for tests of single modules;
- `tables`: tables that stress the readers (spans that expand past the grid bound).

Import them as `tests.support.<module>`: the repository root is on the path under pytest
(`pythonpath` in pyproject.toml) and for `python -m benchmarks` run from the root.
"""
