"""Which backend ``connect()`` returns: argument, then ``AMLEMU_BACKEND``, then a config file, then local.

Builders import their implementation lazily (the Azure one pulls in
azure-identity); third-party backends register under the ``amlemu.backends``
entry-point group, as MLflow's store plugins do.
"""

from __future__ import annotations

import importlib
from typing import Any

from emulator import config
from emulator.errors import ValidationError

BUILTIN = {"local": "backends.local:LocalBackend", "azure": "backends.azure:AzureBackend"}
ENTRY_POINT_GROUP = "amlemu.backends"


def known_backends() -> dict[str, str]:
    from importlib.metadata import entry_points  # scans every installed distribution: only when asked

    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def backend_name(backend: str | None = None) -> str:
    """The backend chosen: ``backend``, then ``AMLEMU_BACKEND``, then a config file, then ``local``."""
    return (backend or config.setting("backend") or "local").lower()


def _load(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def connect(backend: str | None = None, **kwargs: Any):
    """An ``MLClient``-shaped backend.

    Args:
        backend: ``local`` or ``azure`` (or a plugin's name). Default: ``AMLEMU_BACKEND``,
            then ``backend:`` in ``./.amlemu.yml`` or ``$AMLEMU_HOME/config.yml``, then ``local``.
        **kwargs: passed to the backend (``workspace`` for local; ``credential``, ``path``
            for azure; ``workspace_name``, ``resource_group_name``, ``subscription_id``, the
            ``amlemu`` CLI's ``-w``, ``-g`` and ``--subscription``, for both).
    """
    name = backend_name(backend)
    target = BUILTIN.get(name)  # a built-in one wins over a plugin of the same name: no entry-point scan
    if target is None:
        backends = known_backends()
        if name not in backends:
            raise ValidationError(
                f"Unknown backend '{name}'. Known backends: {', '.join(sorted(backends))}. "
                "Set AMLEMU_BACKEND to one of them."
            )
        target = backends[name]
    return _load(target)(**kwargs)
