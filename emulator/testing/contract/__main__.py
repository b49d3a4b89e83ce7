"""``python -m emulator.testing.contract``, what ``amlemu contract`` runs: the suite under pytest, then its table.

The suite runs with its own pytest configuration (:data:`emulator.testing.contract.INI`) and its own folder as
rootdir, so the project it is started from (its ``conftest.py``, ``addopts``, ``testpaths``) plays no part and
nothing is written into the installed package. After pytest's own report comes one table: each test, its
outcome on each backend, and the first line of every failure. A test that fails is a place where that backend
differs from what amlemu holds to be Azure ML's behaviour: on ``--backend azure`` a difference between amlemu
and the user's Azure, on the local backend or the front door a difference between amlemu and Azure.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from emulator.testing.contract import INI

FOLDER = Path(__file__).resolve().parent
#: the order outcomes are worst-first in: a test's outcome on a backend is the worst of its phases
SEVERITY = ("error", "failed", "skipped", "passed")


@dataclass
class Outcome:
    """One test on one backend: ``passed``, ``failed`` (its call), ``error`` (set-up or teardown), ``skipped``."""

    status: str = "passed"
    message: str = ""


@dataclass
class ContractReport:
    """A pytest plugin collecting each test's outcome per backend (under pytest-xdist too: reports reach the
    controller), and the table printed after pytest's own report."""

    backends: list[str] = field(default_factory=list)
    outcomes: dict[str, dict[str, Outcome]] = field(default_factory=dict)

    def pytest_runtest_logreport(self, report: Any) -> None:
        test, _, backend = report.nodeid.rpartition("[")
        if not test:
            return
        backend = backend.rstrip("]")
        if backend not in self.backends:
            self.backends.append(backend)
        outcome = self.outcomes.setdefault(test, {}).setdefault(backend, Outcome())
        if report.passed:
            return
        status = "skipped" if report.skipped else "failed" if report.when == "call" else "error"
        if SEVERITY.index(status) < SEVERITY.index(outcome.status):
            outcome.status, outcome.message = status, _first_line(report)

    def render(self, out: TextIO) -> None:
        if not self.outcomes:
            return
        width = max(len(t) for t in self.outcomes) + 2
        columns = [max(len(b), 7) + 2 for b in self.backends]
        out.write("\namlemu contract: each test's outcome on each backend\n")
        out.write("test".ljust(width) + "".join(b.ljust(c) for b, c in zip(self.backends, columns)) + "\n")
        for test, by_backend in sorted(self.outcomes.items()):
            cells = [by_backend.get(b, Outcome("-")).status for b in self.backends]
            out.write(test.ljust(width) + "".join(s.ljust(c) for s, c in zip(cells, columns)) + "\n")
        differences = [
            (test, backend, outcome)
            for test, by_backend in sorted(self.outcomes.items())
            for backend, outcome in by_backend.items()
            if outcome.status in ("failed", "error")
        ]
        skipped = sum(o.status == "skipped" for by in self.outcomes.values() for o in by.values())
        if not differences:
            note = f" ({skipped} skipped, with the reason above)" if skipped else ""
            out.write(f"\nNo differences: every test that ran passed on {', '.join(self.backends)}{note}.\n")
            return
        out.write(f"\nWhere the backend differs from the contract ({len(differences)}):\n")
        for test, backend, outcome in differences:
            out.write(f"  [{backend}] {test}: {outcome.message}\n")


def _first_line(report: Any) -> str:
    """The failure's own message (``AssertionError: ...``), or a skip's reason, on one line."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        text = str(longrepr[2])
    else:
        crash = getattr(longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(longrepr).strip().splitlines()[-1:][0]
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def pytest_arguments(backend: str | None, workspace_config: str | None, extra: list[str]) -> list[str]:
    """pytest's command line for the packaged suite: its own configuration and rootdir, no cache written into the
    package, amlemu's backend options, then the caller's own arguments."""
    argv = [str(FOLDER), "-c", str(INI), "--rootdir", str(FOLDER), "-p", "no:cacheprovider"]
    if backend:
        argv += ["--aml-backend", backend]
    if workspace_config:
        argv += ["--aml-workspace-config", workspace_config]
    return [*argv, *extra]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="amlemu contract",
        description="Run amlemu's contract suite (the azure-ai-ml calls amlemu answers as Azure ML does) with pytest, "
        "then print each test's outcome per backend and where the backend differs. Every argument not listed here "
        "goes to pytest (-k EXPR, -x, -n 2, -v ...).",
        allow_abbrev=False,
    )
    p.add_argument(
        "--backend",
        help="local (the emulator), front-door (the Azure backend, unmodified, against an amlemu serve this run "
        "starts), azure (your workspace: its config.json and DefaultAzureCredential) or a plugin backend's name. "
        "Default: AMLEMU_BACKEND, else local and front-door both",
    )
    p.add_argument(
        "--workspace-config",
        metavar="PATH",
        help="the Azure ML workspace's config.json for --backend azure (default: searched from the current folder up)",
    )
    return p


def check(backend: str | None, workspace_config: str | None) -> str | None:
    """What is wrong with the options (a message naming the fix), or None."""
    if workspace_config and not Path(workspace_config).is_file():
        return f"--workspace-config {workspace_config}: no such file. Give the path of the workspace's config.json."
    if backend and backend.lower() not in ("front-door", "azure-front-door"):
        from backends import known_backends

        known = sorted({*known_backends(), "front-door"})
        if backend.lower() not in known:
            return f"--backend {backend}: unknown backend. Known: {', '.join(known)}."
    return None


def main(argv: list[str] | None = None) -> int:
    args, extra = parser().parse_known_args(argv)
    problem = check(args.backend, args.workspace_config)
    if problem:
        print(f"ERROR: {problem}", file=sys.stderr)
        return 2
    import pytest  # only when the suite runs

    config = str(Path(args.workspace_config).resolve()) if args.workspace_config else None
    report = ContractReport()
    code = pytest.main(pytest_arguments(args.backend, config, extra), plugins=[report])
    report.render(sys.stdout)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
