"""Pins fitted to an environment's Python, against a package index laid out on disk (PEP 503 pages
and a find-links folder), and the index configuration read as pip and uv read it."""

from __future__ import annotations

import html
import os
import socket
from pathlib import Path

import pytest

from emulator.errors import EmulatorError, ValidationError
from emulator.runtime import pins

# fitprobe's releases: what each file is, and the Requires-Python it declares
FITPROBE = {
    "fitprobe-0.9-py3-none-any.whl": None,
    "fitprobe-1.0-py3-none-any.whl": ">=3.7,<3.10",
    "fitprobe-1.1-cp39-cp39-manylinux_2_17_x86_64.whl": ">=3.9",  # compiled, for 3.9 only ...
    "fitprobe-1.1.tar.gz": ">=3.9",  # ... and its source, which would need compiling
    "fitprobe-2.0-py3-none-any.whl": ">=3.8",
    "fitprobe-2.1-py3-none-any.whl": ">=3.8",
    "fitprobe-3.0rc1-py3-none-any.whl": ">=3.8",
}
OLDONLY = {"oldonly-1.0-py3-none-any.whl": "<3.8", "oldonly-1.1-py3-none-any.whl": "<3.8"}


def _index(root: Path, projects: dict[str, dict[str, str | None]]) -> str:
    """A PEP 503 simple index under ``root``: one page per project, its files beside it."""
    for project, files in projects.items():
        page = root / "simple" / project
        page.mkdir(parents=True)
        anchors = []
        for name, requires in files.items():
            (root / "files").mkdir(exist_ok=True)
            (root / "files" / name).write_bytes(b"")  # the index is asked, nothing is downloaded
            attr = f' data-requires-python="{html.escape(requires)}"' if requires else ""
            anchors.append(f'<a href="../../files/{name}"{attr}>{name}</a>')
        (page / "index.html").write_text("<!DOCTYPE html><html><body>" + "".join(anchors) + "</body></html>")
    return (root / "simple").as_uri()


@pytest.fixture
def index(tmp_path, monkeypatch) -> str:
    """Only the on-disk index: pip's configuration files and every index variable set aside."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("UV_", "PIP_")) or name == "AMLEMU_PINS":
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    url = _index(tmp_path / "index", {"fitprobe": FITPROBE, "oldonly": OLDONLY})
    monkeypatch.setenv("UV_DEFAULT_INDEX", url)
    return url


def test_a_pin_that_installs_passes_unchanged(index):
    fitted = pins.fit(["fitprobe==1.0", "fitprobe>=2", "fitprobe"], "3.9", strict=False)
    assert fitted.requirements == ["fitprobe==1.0", "fitprobe>=2", "fitprobe"]
    assert fitted.substitutions == []


def test_a_pin_for_an_older_python_becomes_the_nearest_later_version(index):
    fitted = pins.fit(["fitprobe==1.0"], "3.11", strict=False)
    # 1.1 is compiled for 3.9 only: its source distribution does not count as a distribution for 3.11
    assert fitted.requirements == ["fitprobe==2.0"]
    assert fitted.substitutions == ["fitprobe 1.0 → 2.0 (1.0 requires Python <3.10; this environment runs Python 3.11)"]


def test_a_compiled_release_without_a_wheel_for_the_python_is_replaced(index):
    fitted = pins.fit(["fitprobe==1.1"], "3.10", strict=False)
    assert fitted.requirements == ["fitprobe==2.0"]
    (line,) = fitted.substitutions
    assert line.startswith("fitprobe 1.1 → 2.0 (1.1 has no wheel for Python 3.10")
    assert "its wheels are for cp39" in line


def test_extras_and_markers_are_kept_and_a_marker_that_excludes_the_python_is_left_alone(index):
    fitted = pins.fit(
        ['fitprobe[fast]==1.0; sys_platform == "linux"', 'fitprobe==1.0; python_version < "3.10"'],
        "3.11",
        strict=False,
    )
    assert fitted.requirements == [
        'fitprobe[fast]==2.0; sys_platform == "linux"',
        'fitprobe==1.0; python_version < "3.10"',
    ]


def test_a_range_no_version_of_which_runs_is_fitted_too(index):
    fitted = pins.fit(["fitprobe>=1.0,<1.2"], "3.11", strict=False)
    assert fitted.requirements == ["fitprobe>=2.0,==2.0.*"]  # a range moves to the nearest release series
    assert fitted.substitutions[0].startswith("fitprobe <1.2,>=1.0 → 2.0 (1.1 has no wheel for Python 3.11")


def test_the_nearest_earlier_version_when_no_later_one_runs(index):
    fitted = pins.fit(["fitprobe==2.1"], "3.7", strict=False)
    assert fitted.requirements == ["fitprobe==1.0"]
    assert fitted.substitutions == [
        "fitprobe 2.1 → 1.0 (2.1 requires Python >=3.8; this environment runs Python 3.7; no later version runs on it)"
    ]


def test_strict_refuses_naming_the_pin_and_the_python_it_needs(index):
    with pytest.raises(EmulatorError) as caught:
        pins.fit(["fitprobe==1.0"], "3.11", strict=True)
    assert caught.value.code == "EnvironmentBuildFailed"
    message = str(caught.value)
    assert "'fitprobe==1.0'" in message and "needs Python >=3.7,<3.10" in message
    assert "Python 3.11" in message and "fitprobe==2.0" in message  # the fix


def test_a_package_the_index_does_not_have_is_named_with_the_index_asked(index):
    with pytest.raises(EmulatorError) as caught:
        pins.fit(["fitprobe==1.0", "no-such-probe==1.0"], "3.9", strict=False)
    assert caught.value.code == "EnvironmentBuildFailed"
    assert "'no-such-probe' is not on the package index" in str(caught.value)
    assert index in str(caught.value)


def test_a_version_that_does_not_exist_names_the_versions_near_it(index):
    with pytest.raises(EmulatorError, match=r"'fitprobe==1.7'.*Versions near it: 0.9, 1.0, 1.1, 2.0, 2.1\."):
        pins.fit(["fitprobe==1.7"], "3.11", strict=False)


def test_a_package_with_no_version_for_the_python_is_refused(index):
    with pytest.raises(EmulatorError, match=r"No version of 'oldonly' installs on Python 3.11 .*requires Python <3.8"):
        pins.fit(["oldonly==1.0"], "3.11", strict=False)


def test_lines_that_are_not_index_requirements_pass_untouched(index):
    lines = ["-r requirements.txt", "--extra-index-url file:///nowhere", "./local/pkg", "pkg @ file:///tmp/pkg.whl"]
    assert pins.fit(lines, "3.11", strict=False).requirements == lines


def test_an_index_that_does_not_answer_leaves_the_pins_unchecked(index, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("UV_DEFAULT_INDEX", f"http://127.0.0.1:{port}/simple")
    fitted = pins.fit(["fitprobe==1.0"], "3.11", strict=False)
    assert fitted.requirements == ["fitprobe==1.0"] and fitted.substitutions == []
    assert "could not ask the package index about fitprobe" in fitted.notes[0]


def test_find_links_alone_with_no_index(index, tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "linkonly-1.0-cp39-cp39-manylinux_2_17_x86_64.whl").write_bytes(b"")
    (wheels / "linkonly-1.2-py3-none-any.whl").write_bytes(b"")
    monkeypatch.setenv("UV_NO_INDEX", "1")
    monkeypatch.setenv("UV_FIND_LINKS", str(wheels))
    assert pins.fit(["linkonly==1.0"], "3.11", strict=False).requirements == ["linkonly==1.2"]
    with pytest.raises(EmulatorError, match=r"'fitprobe' is not on the package index \(" + str(wheels)):
        pins.fit(["fitprobe==1.0"], "3.11", strict=False)


def test_package_indexes_merge_uv_variables_and_pip_configuration(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("UV_", "PIP_")):
            monkeypatch.delenv(name)
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\nindex-url = https://mirror.invalid/simple\nextra-index-url =\n  file:///a/simple\n"
        "  file:///b/simple\nfind-links = /wheels\n[install]\nfind-links = /install-wheels\n"
    )
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "none"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path / "none"))
    indexes = pins.package_indexes()
    assert indexes.index_url == "https://mirror.invalid/simple"
    assert indexes.extra_index_urls == ("file:///a/simple", "file:///b/simple")
    assert indexes.find_links == ("/install-wheels",)  # [install] over [global]

    monkeypatch.setenv("UV_DEFAULT_INDEX", "https://uv.invalid/simple")
    monkeypatch.setenv("UV_INDEX", "team=https://team.invalid/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "/env-wheels")
    indexes = pins.package_indexes()
    assert indexes.index_url == "https://uv.invalid/simple"
    assert indexes.extra_index_urls == ("https://team.invalid/simple", "file:///a/simple", "file:///b/simple")
    assert indexes.find_links == ("/env-wheels",)
    assert indexes.uv_args() == [
        "--index-url", "https://uv.invalid/simple",
        "--extra-index-url", "https://team.invalid/simple",
        "--extra-index-url", "file:///a/simple",
        "--extra-index-url", "file:///b/simple",
        "--find-links", "/env-wheels",
        "--index-strategy", "unsafe-best-match",
    ]  # fmt: skip


def test_strict_pins_from_the_environment_or_the_config_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AMLEMU_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AMLEMU_PINS", raising=False)
    assert pins.strict_pins() is False
    (tmp_path / ".amlemu.yml").write_text("pins: strict\n")
    assert pins.strict_pins() is True
    monkeypatch.setenv("AMLEMU_PINS", "substitute")
    assert pins.strict_pins() is False
    monkeypatch.setenv("AMLEMU_PINS", "loose")
    with pytest.raises(ValidationError, match="'loose' is not a pin policy"):
        pins.strict_pins()


def test_the_python_wording():
    assert pins.python_substitution("3.9", "3.11") == "python 3.9 → 3.11 (no Python 3.9 on this machine)"
    refusal = pins.python_refusal("3.9", "3.11")
    assert refusal.code == "EnvironmentBuildFailed"
    assert "no Python 3.9 on this machine" in str(refusal) and "AMLEMU_PINS=strict" in str(refusal)
