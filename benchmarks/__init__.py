"""Benchmarks run by `make bench` (`python -m benchmarks`): one `bench_*.py` module per subject."""
