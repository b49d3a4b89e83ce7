"""``system prune`` leaves a virtualenv alone while its builder holds the build lock."""

from __future__ import annotations

import fcntl

from emulator.runtime import prune
from emulator.runtime.venv import READY, venvs_root


def test_a_virtualenv_being_built_is_not_pruned_and_a_stale_one_is(amlemu_home, monkeypatch):
    monkeypatch.setattr(prune, "engine_answers", lambda: False)  # folders only: containers are tested on docker
    monkeypatch.setenv("AMLEMU_ENV_CACHE", str(amlemu_home / "venvs"))  # not the machine's shared cache
    root = venvs_root()
    building, stale = root / "building", root / "stale"
    for folder in (building, stale):
        (folder / "bin").mkdir(parents=True)
    (stale / READY).write_text("[]")
    with open(f"{building}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as ensure_venv holds it while it installs
        removed = prune.prune(venv_days=0)
        assert removed["virtualenvs"] == ["stale"] and building.exists() and not stale.exists()
    assert prune.prune(venv_days=0)["virtualenvs"] == ["building"] and not building.exists()
