"""Installed distributions repacked as wheels: what the wheel holds, and that uv installs it with no index."""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata as md
import io
import subprocess
import sys
import zipfile

from packaging.utils import parse_wheel_filename

from emulator.runtime import wheelhouse
from emulator.runtime.installs import uv_bin


def repacked(name: str, folder) -> zipfile.ZipFile:
    dist = md.distribution(name)
    target = wheelhouse.repack(dist, folder / wheelhouse.wheel_name(dist))
    return zipfile.ZipFile(target)


def test_a_repacked_wheel_holds_the_distribution_with_a_valid_record(tmp_path):
    flask = md.distribution("flask")
    name = wheelhouse.wheel_name(flask)
    assert name == f"flask-{flask.version}-py3-none-any.whl"
    with repacked("flask", tmp_path) as wheel:
        names = wheel.namelist()
        info = f"flask-{flask.version}.dist-info"
        assert "flask/app.py" in names and f"{info}/METADATA" in names and f"{info}/entry_points.txt" in names
        assert not any(n.endswith((".pyc", "/INSTALLER", "/REQUESTED", "/direct_url.json")) for n in names)
        assert not any(".data/scripts/flask" in n for n in names), "console scripts are the installer's to write"
        rows = list(csv.reader(io.StringIO(wheel.read(f"{info}/RECORD").decode())))
        assert {row[0] for row in rows} == set(names)
        for path, digest, size in rows:
            if path.endswith("RECORD"):
                continue
            data = wheel.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expected}" and int(size) == len(data), path


def test_compiled_wheels_keep_their_tags_and_scripts_their_interpreter_line(tmp_path):
    numpy = md.distribution("numpy")
    _, _, _, tags = parse_wheel_filename(wheelhouse.wheel_name(numpy))
    assert {t.interpreter for t in tags} == {f"cp3{sys.version_info.minor}"} and all(
        "linux" in t.platform for t in tags
    )
    with repacked("jmespath", tmp_path) as wheel:  # jp.py: a plain script, not an entry point
        [script] = [n for n in wheel.namelist() if n.endswith(".data/scripts/jp.py")]
        assert wheel.read(script).startswith(b"#!python\n")


def test_uv_installs_repacked_wheels_without_an_index(tmp_path):
    for name in ("flask", "werkzeug", "jinja2", "markupsafe", "itsdangerous", "click", "blinker"):
        repacked(name, tmp_path).close()
    uv = uv_bin()
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "--no-index", "--offline",
         "--find-links", str(tmp_path), "--cache-dir", str(tmp_path / "uv-cache"), "flask"],
        check=True,
    )  # fmt: skip
    version = subprocess.run([str(venv / "bin" / "flask"), "--version"], capture_output=True, text=True, check=True)
    assert f"Flask {md.version('flask')}" in version.stdout
