"""Names for what a test creates: a unique per-run prefix on Azure, a fresh workspace per test locally.

On the Azure backend every test of every run shares one workspace, and a name lives on after the run
if teardown never came (a killed CI job): each name gets the run's prefix (a letter and four random
characters, one per pytest process, so ``pytest -n 2`` workers never clash), which also says which
run left a resource behind. Names keep Azure ML's rule for their kind (:mod:`emulator.naming`):
endpoints and deployments take at most 32 characters, compute clusters 16, so the user's part is
shortened, never the prefix.
"""

from __future__ import annotations

import itertools
import re
import secrets
import string

from emulator import naming

#: the longest name Azure ML takes for each kind the harness creates
MAX_LENGTH = {"online_endpoint": 32, "online_deployment": 32, "compute": 16, "model": 255, "workspace": 33}
_ALPHABET = string.ascii_lowercase + string.digits


def run_prefix() -> str:
    """A fresh prefix for this run: a letter, then four letters or digits (36^4 x 26 possibilities)."""
    return secrets.choice(string.ascii_lowercase) + "".join(secrets.choice(_ALPHABET) for _ in range(4))


def sanitized(text: str, allowed: str = r"a-zA-Z0-9-") -> str:
    """``text`` with every character outside ``allowed`` turned into ``-`` (runs of them into one)."""
    return re.sub(rf"[^{allowed}]+", "-", text).strip("-_") or "x"


class RunNames:
    """Names for one pytest process: ``prefixed`` on Azure, ``workspace_for`` a test locally."""

    def __init__(self, prefix: str | None = None):
        self.prefix = prefix or run_prefix()
        self._counter = itertools.count(1)

    def prefixed(self, kind: str, name: str) -> str:
        """``<prefix><n>-<name>``, shortened to the kind's limit: unique within the run (``n`` counts the run's
        names, so a name reused by a later test never waits for Azure to finish deleting the first)."""
        head = f"{self.prefix}{next(self._counter)}-"
        tail = sanitized(name, r"a-zA-Z0-9-" if kind != "model" else r"a-zA-Z0-9._-")
        full = (head + tail)[: MAX_LENGTH.get(kind, 32)].rstrip("-_.")
        return naming.check(_RULE[kind], full) if kind in _RULE else full

    @staticmethod
    def workspace_for(test_name: str) -> str:
        """A local workspace named after the test (``test_scoring-k3z9p``): fresh, and easy to find with
        ``--aml-keep``."""
        base = sanitized(test_name, r"a-zA-Z0-9_-")[:26]
        return f"{base}-{run_prefix()}"


#: the rule in :data:`emulator.naming.RULES` each kind's name must follow
_RULE = {"online_endpoint": "endpoint", "online_deployment": "deployment", "compute": "amlcompute", "model": "model"}
