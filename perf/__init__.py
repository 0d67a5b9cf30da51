"""Performance measurements: the benchmark behind scripts/benchmark.py."""
