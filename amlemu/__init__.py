"""amlemu: Azure Machine Learning on your machine.

The public namespace. ``amlemu.connect()`` returns an ``MLClient``-shaped client
(the local emulator by default; ``AMLEMU_BACKEND=azure`` gives the real
``MLClient``); ``amlemu.testing`` holds the helpers for users' own tests.

>>> import amlemu
>>> ml_client = amlemu.connect()

The engine lives in ``emulator`` and the backend seam in ``backends``; this
package only names what users import. Attributes load on first use, so
``import amlemu`` costs no azure-ai-ml import (about 1.4 s).
"""

from __future__ import annotations

import importlib
from typing import Any

from emulator import __version__

__all__ = ["__version__", "connect", "known_backends", "testing"]


def __getattr__(name: str) -> Any:
    if name in ("connect", "known_backends"):
        from backends import registry  # on first use: the registry is light, backends import lazily

        return getattr(registry, name)
    if name == "testing":
        return importlib.import_module("amlemu.testing")
    raise AttributeError(f"module 'amlemu' has no attribute {name!r}")
