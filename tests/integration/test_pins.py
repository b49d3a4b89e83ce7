"""Pins fitted against the real package index this machine is configured with (pip's configuration,
uv's variables), and the queries made in parallel (a slow index on 127.0.0.1 shows it)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from emulator.errors import EmulatorError
from emulator.runtime import pins


@pytest.fixture(autouse=True)
def _machine_index_configuration(tmp_path, monkeypatch):
    """The machine's own index configuration; no developer .amlemu.yml."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AMLEMU_HOME", str(tmp_path / "home"))


def test_a_pin_that_needs_an_older_python_becomes_the_nearest_later_version():
    # inference-schema 1.5.1 declares Requires-Python >=3.7,<3.11; 1.7.1 is the first for 3.11
    fitted = pins.fit(["inference-schema==1.5.1", "scikit-learn", "pandas>=1.0"], "3.11", strict=False)
    assert fitted.requirements == ["inference-schema==1.7.1", "scikit-learn", "pandas>=1.0"]
    assert fitted.substitutions == [
        "inference-schema 1.5.1 → 1.7.1 (1.5.1 requires Python <3.11; this environment runs Python 3.11)"
    ]


def test_the_same_pin_on_its_own_python_is_kept():
    fitted = pins.fit(["inference-schema==1.5.1"], "3.9", strict=False)
    assert fitted.requirements == ["inference-schema==1.5.1"]
    assert fitted.substitutions == []


def test_a_compiled_pin_moves_to_the_first_release_with_a_wheel_for_the_python():
    # numpy 1.21.6 requires Python <3.11; 1.22.x has sources only for 3.11; 1.23.2 brought cp311 wheels
    fitted = pins.fit(["numpy==1.21.6"], "3.11", strict=False)
    assert fitted.requirements == ["numpy==1.23.2"]


def test_strict_refuses_naming_the_pin_and_the_python_it_needs():
    with pytest.raises(EmulatorError) as caught:
        pins.fit(["inference-schema==1.5.1"], "3.11", strict=True)
    assert caught.value.code == "EnvironmentBuildFailed"
    message = str(caught.value)
    assert "'inference-schema==1.5.1'" in message
    assert "needs Python >=3.7,<3.11" in message and "Python 3.11" in message


def test_a_package_that_does_not_exist_is_named_with_the_index_asked():
    with pytest.raises(EmulatorError) as caught:
        pins.fit(["scikit-learn", "amlemu-no-such-package-7f3a==1.0"], "3.11", strict=False)
    assert caught.value.code == "EnvironmentBuildFailed"
    message = str(caught.value)
    assert "'amlemu-no-such-package-7f3a' is not on the package index (" in message
    for url in pins.package_indexes().extra_index_urls:
        assert url in message


def test_a_version_that_exists_for_no_python_names_the_versions_near_it():
    with pytest.raises(EmulatorError) as caught:
        pins.fit(["scikit-learn==0.0.99"], "3.11", strict=False)
    assert caught.value.code == "EnvironmentBuildFailed"
    assert "'scikit-learn==0.0.99' names no version" in str(caught.value)
    assert "Versions near it: 0.9, 0.10, 0.11" in str(caught.value)


class _SlowIndex(BaseHTTPRequestHandler):
    """A PEP 503 index where every project has one wheel, each page answered after DELAY_S."""

    DELAY_S = 0.5
    lock = threading.Lock()
    in_flight = 0
    most_in_flight = 0

    def do_GET(self):  # noqa: N802 - http.server's name
        cls = type(self)
        with cls.lock:
            cls.in_flight += 1
            cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
        time.sleep(self.DELAY_S)  # long enough for the other queries to arrive while this one is open
        with cls.lock:
            cls.in_flight -= 1
        project = self.path.strip("/").split("/")[-1]
        name = project.replace("-", "_")
        body = f'<html><body><a href="/files/{name}-1.0-py3-none-any.whl">{name}-1.0-py3-none-any.whl</a></body></html>'
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def test_the_index_is_asked_about_pins_in_parallel(monkeypatch):
    """Counted, not timed: the slow index sees several queries open at once."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowIndex)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
        for name in ("UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("UV_DEFAULT_INDEX", f"http://127.0.0.1:{server.server_address[1]}/simple")
        requirements = [f"slowprobe{i}==1.0" for i in range(10)]
        fitted = pins.fit(requirements, "3.11", strict=False)
    finally:
        server.shutdown()
        server.server_close()
    assert fitted.requirements == requirements
    assert _SlowIndex.most_in_flight >= 4, f"at most {_SlowIndex.most_in_flight} index queries open at once"
