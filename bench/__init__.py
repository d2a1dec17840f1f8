"""Benchmarks of the gateway (not tests: CI does not run them); `python -m bench`."""
