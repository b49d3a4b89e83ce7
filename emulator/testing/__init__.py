"""Helpers for testing and benchmarking amlemu (and users' own code against it).

``load``: an HTTP/1.1 load generator for loopback servers (``run_load``).
"""

from emulator.testing.load import LoadResult, Sample, generate_load, percentile, run_load

__all__ = ["LoadResult", "Sample", "generate_load", "percentile", "run_load"]
