"""Servers and fixtures shared by the tests and the benchmarks (not part of the package).

- `openai_stub`: a scriptable OpenAI-compatible chat server (latency, slots, failures, records);
- `valkey`: a valkey-server child process for tests of single modules;
- `tables`: tables that stress the readers (spans that expand past the grid bound);
- `vlm_stub`: a VLM server that behaves like vLLM (greedy model defaults, length cut-offs,
  503 under load), images found by thumbnail; `qa_responder` plays the QA generator/verifier.

Import them as `tests.support.<module>`: the repository root is on the path under pytest
(`pythonpath` in pyproject.toml) and for `python -m benchmarks` run from the root.
"""
