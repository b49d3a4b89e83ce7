"""The typed records (:mod:`emulator.store.records`) agree with the code that writes and reads them.

mypy, in a lenient mode, checks the record module and its users for key errors only: a key read
that no record declares, a value of the wrong type written under a declared key. Other findings
(``None`` not narrowed, ...) are not this test's business. mypy is a test dependency: this test
fails, never skips, without it.
"""

from __future__ import annotations

import re
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[2]
USERS = [
    "emulator/store",
    "emulator/jobs",
    "emulator/endpoints",
    "emulator/sweeps",
    "emulator/pipelines",
    "emulator/automl",
    "emulator/compute",
    "emulator/models",
    "emulator/environments",
]
KEY_ERRORS = re.compile(r"\[(typeddict-item|typeddict-unknown-key|literal-required|name-defined)\]$")


def test_records_and_their_users_have_no_key_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out, err, _ = api.run(
        [
            "--ignore-missing-imports",
            "--follow-imports=silent",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "mypy"),
            *USERS,
        ]
    )
    assert not err, err
    key_errors = [line for line in out.splitlines() if KEY_ERRORS.search(line)]
    assert key_errors == [], "\n".join(key_errors)
