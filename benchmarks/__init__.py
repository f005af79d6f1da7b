"""Benchmarks of the acceptance points of issue #2: ``python -m benchmarks`` (see README.md)."""
