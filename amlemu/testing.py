"""Helpers for testing code against amlemu: a loopback HTTP load generator (``run_load``) and more to come."""

from emulator.testing import LoadResult, Sample, generate_load, percentile, run_load

__all__ = ["LoadResult", "Sample", "generate_load", "percentile", "run_load"]
