"""Support for tests and benchmarks that ships with the package: real servers, no mocks.

`trivia.testing.openai_stub` is a scriptable OpenAI-compatible chat server (latency, slots,
failures, call records); `trivia.testing.vlm_stub` serves vision requests on the same server
(images decoded from their data URLs, answers from a responder or the ground-truth tables).
"""
