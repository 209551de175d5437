"""Support for tests and benchmarks that ships with the package: real servers, no mocks.

`trivia.testing.openai_stub` is a scriptable OpenAI-compatible chat server (latency, slots,
failures, call records).
"""
