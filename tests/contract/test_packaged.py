"""The packaged contract suite stays whole: every file of it runs here, and its iris files are the samples'."""

from __future__ import annotations

from pathlib import Path

from emulator.testing.contract import IRIS
from tests.conftest import SAMPLES

PACKAGED = IRIS.parent.parent
HERE = Path(__file__).parent


def test_every_packaged_file_is_collected_here():
    packaged = {p.name for p in PACKAGED.glob("test_*.py")}
    assert len(packaged) >= 7
    missing = sorted(packaged - {p.name for p in HERE.glob("test_*.py")})
    assert not missing, f"add tests/contract/<file> importing * from emulator.testing.contract.<file> for {missing}"


def test_the_packaged_iris_files_are_the_samples():
    files = sorted(p.relative_to(IRIS) for p in IRIS.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert [str(f) for f in files] == [
        "data/iris.csv",
        "job.yml",
        "sample-request.json",
        "score/score.py",
        "src/train.py",
    ]
    for relative in files:
        assert (IRIS / relative).read_bytes() == (SAMPLES / "iris" / relative).read_bytes(), (
            f"{relative} differs from sample_models/iris: copy it again into {IRIS}"
        )
