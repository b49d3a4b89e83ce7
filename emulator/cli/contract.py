"""``amlemu contract``: the packaged contract suite (:mod:`emulator.testing.contract`), run with pytest.

The suite runs in its own interpreter (``python -m emulator.testing.contract``, which parses the options and
prints the help), so this command imports nothing of it or of pytest, and every argument goes there as given.
"""

from __future__ import annotations

import argparse
import subprocess
import sys


def register(groups, common) -> None:
    contract = groups.add_parser(
        "contract",
        help="run amlemu's contract suite on a backend (yours: --backend azure) and print where it differs",
        add_help=False,  # -h/--help is the suite's own: it lists its options
    )
    contract.set_defaults(run=_contract, passthrough=[])


def _contract(args: argparse.Namespace) -> int:
    process = subprocess.Popen([sys.executable, "-m", "emulator.testing.contract", *args.passthrough])
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:  # the suite got Ctrl-C too: let it tear down what it started
            continue
