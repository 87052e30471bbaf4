"""Benchmarks (not timed tests): ``python -m brainlike.bench NAME``."""
