"""Helpers for users' own tests: the pytest fixtures (``aml_client``, ``aml_run_job``, ``aml_deploy``, ...,
registered by installing amlemu), ``ScoringContainer`` and ``ScoringServer`` (a ``score.py`` in its
container or process), and a loopback HTTP load generator (``run_load``).

Names load on first use: ``ScoringContainer`` pulls in testcontainers and the Docker client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from emulator.testing import LoadResult, Sample, generate_load, percentile, run_load

if TYPE_CHECKING:  # loaded on first use by __getattr__ below
    from emulator.testing.scoring import ScoringContainer, ScoringServer

__all__ = ["LoadResult", "Sample", "ScoringContainer", "ScoringServer", "generate_load", "percentile", "run_load"]

_LAZY = {"ScoringContainer": "emulator.testing.scoring", "ScoringServer": "emulator.testing.scoring"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'amlemu.testing' has no attribute {name!r}")
