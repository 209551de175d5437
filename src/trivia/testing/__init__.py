"""The VLM stub for the data engine's tests (`trivia.testing.vlm_stub`), built on the OpenAI stub
in `tests/support/`; it runs only where the repository's `tests` package is importable.
"""
