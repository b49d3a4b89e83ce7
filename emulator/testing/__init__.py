"""Helpers for testing and benchmarking amlemu (and users' own code against it).

``load``: an HTTP/1.1 load generator for loopback servers (``run_load``). ``pytest_plugin``: the ``aml_*``
fixtures (with ``workspace``, ``jobs``, ``deploy``, ``leaks`` and ``names`` behind them).

The load generator's names load on first use: pytest imports this package in every run of an environment
where amlemu is installed (the plugin lives here), and asyncio alone costs about 80 ms.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["LoadResult", "Sample", "generate_load", "percentile", "run_load"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("emulator.testing.load"), name)
    raise AttributeError(f"module 'emulator.testing' has no attribute {name!r}")
