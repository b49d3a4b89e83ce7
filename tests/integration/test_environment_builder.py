"""Environments built for the process runtime from conda files, as a user's deployments and jobs get them.

Real builds with uv: the wheel cache and the wheelhouse of this machine's packages are shared by every
test (they live outside AMLEMU_HOME), so after the first run a build here takes a second or two. The
offline test points every index at a closed loopback port. No test downloads a torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.runtime.venv import READY
from tests.e2e.test_cli_jobs import wait_status, write


@pytest.fixture(autouse=True)
def own_env_cache(cli, monkeypatch):
    """These tests watch first builds and what a failed one leaves: a virtualenv cache of their own."""
    monkeypatch.setenv("AMLEMU_ENV_CACHE", str(cli.home / "cache" / "venvs"))


CLOSED_INDEX = "http://127.0.0.1:9/simple"  # the discard port: nothing listens, the connection is refused

SCORE_PY = """
import json
import sys

import numpy
import sklearn


def init():
    pass


def run(raw_data):
    return {"numpy": numpy.__version__, "python": "%d.%d" % sys.version_info[:2], "rows": len(json.loads(raw_data))}
"""


def conda(folder: Path, name: str, *deps: str, pip: tuple[str, ...] = ()) -> Path:
    lines = [f"name: {name}", "channels: [conda-forge]", "dependencies:", *(f"  - {d}" for d in deps), "  - pip"]
    if pip:
        lines += ["  - pip:", *(f"    - {req}" for req in pip)]
    return write(folder / f"{name}.yml", "\n".join(lines) + "\n")


def register(cli, folder: Path, name: str, *deps: str, pip: tuple[str, ...] = ()) -> None:
    path = conda(folder, name, *deps, pip=pip)
    cli.json(
        "environment", "create", "--name", name, "--image", "mcr.microsoft.com/azureml/x:1", "--conda-file", str(path)
    )


def build_fails(cli, name: str, *needles: str) -> str:
    """``environment build`` exits 1 with one error that holds ``needles`` (after progress lines), no traceback."""
    proc = cli.run("environment", "build", "--name", name, check=False)
    assert proc.returncode == 1 and proc.stdout == "" and "Traceback" not in proc.stderr, proc.stderr
    error = proc.stderr[proc.stderr.index("ERROR: ") :]
    for needle in needles:
        assert needle in error, f"{needle!r} not in {error!r}"
    assert "Check the package names" not in error
    return error


def create_fails(cli, *args: str) -> str:
    proc = cli.run(*args, check=False)
    assert proc.returncode == 1 and proc.stdout == "" and "Traceback" not in proc.stderr, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    return line


def partial_builds(home: Path) -> list[str]:
    """What a failed build left in the venvs folder: a folder without its ready marker, a lock of no build."""
    root = home / "cache" / "venvs"
    entries = sorted(root.iterdir()) if root.is_dir() else []
    folders = {p.name for p in entries if p.is_dir() and (p / READY).exists()}
    return [p.name for p in entries if p.name not in folders and p.name.removesuffix(".lock") not in folders]


def deploy(cli, folder: Path, endpoint: str, conda_path: Path) -> dict:
    write(folder / "code" / "score.py", SCORE_PY)
    spec = write(
        folder / f"{endpoint}-deployment.yml",
        f"name: blue\nendpoint_name: {endpoint}\ncode_configuration:\n  code: code\n  scoring_script: score.py\n"
        f"environment:\n  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\n"
        f"  conda_file: {conda_path.name}\ninstance_type: Standard_DS3_v2\ninstance_count: 1\n",
    )
    cli.json("online-endpoint", "create", "--name", endpoint)
    proc = cli.run("online-deployment", "create", "--file", str(spec), "--all-traffic", check=False, timeout=300)
    if proc.returncode:
        return {"provisioning_state": "Failed", "stderr": proc.stderr}
    out = proc.stdout
    return json.loads(out if out.startswith("{") else out[out.rindex("\n{\n") + 1 :])


def invoke(cli, folder: Path, endpoint: str) -> dict:
    request = write(folder / "request.json", json.dumps([[1, 2], [3, 4]]))
    answer = cli.run("online-endpoint", "invoke", "--name", endpoint, "--request-file", str(request)).stdout
    return json.loads(json.loads(answer)) if answer.strip().startswith('"') else json.loads(answer)


def test_user_pins_win_over_the_serving_packages(cli, tmp_path):
    """numpy pinned below this machine's version, next to the scoring server's packages: one resolution, the pin
    holds, the deployment serves."""
    path = conda(tmp_path, "pinned", "python=3.11", pip=("numpy==2.2.6", "scikit-learn"))
    deployment = deploy(cli, tmp_path, "pins-ep", path)
    assert deployment["provisioning_state"] == "Succeeded", deployment
    assert invoke(cli, tmp_path, "pins-ep") == {"numpy": "2.2.6", "python": "3.11", "rows": 2}
    events = cli.run("online-deployment", "get-logs", "--name", "blue", "--endpoint-name", "pins-ep",
                     "--container", "storage-initializer").stdout  # fmt: skip
    assert "numpy==2.2.6" in events and "WARNING" not in events, events


def test_offline_a_deployment_builds_from_this_machines_packages(cli, tmp_path, monkeypatch):
    """No index reachable: scikit-learn and pandas, unpinned, and the serving packages come from the wheelhouse; a
    package in neither the cache nor the wheelhouse is named in the error, and the failed build leaves nothing."""
    for variable in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        monkeypatch.setenv(variable, CLOSED_INDEX)
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    path = conda(tmp_path, "offline", pip=("scikit-learn", "pandas"))
    deployment = deploy(cli, tmp_path, "offline-ep", path)
    assert deployment["provisioning_state"] == "Succeeded", deployment
    assert invoke(cli, tmp_path, "offline-ep")["rows"] == 2

    register(cli, tmp_path, "uncached", pip=("scikit-learn", "amlemu-never-cached-package"))
    build_fails(
        cli,
        "uncached",
        "EnvironmentBuildFailed",
        f"No package index could be reached ({CLOSED_INDEX})",
        "amlemu-never-cached-package is neither in uv's cache",
        "Full build log:",
    )
    assert partial_builds(cli.home) == []


def test_another_python_missing_here_is_substituted_with_warnings(cli, tmp_path, monkeypatch):
    """python=3.9 with no Python 3.9 (AMLEMU_PYTHONS=host): the job runs on the host's Python, numpy 1.21.6 (no
    wheel for 3.11) becomes the nearest version that has one, and the job log, environment build and the build
    record say so. Strict pins refuse, naming the Python."""
    monkeypatch.setenv("AMLEMU_PYTHONS", "host")
    register(cli, tmp_path, "py39", "python=3.9", pip=("numpy==1.21.6",))
    spec = write(
        tmp_path / "job.yml",
        "command: python -c \"import numpy, sys; print('numpy', numpy.__version__, 'python', sys.version_info[:2])\"\n"
        "environment: azureml:py39@latest\n",
    )
    job = wait_status(cli, cli.json("job", "create", "--file", str(spec))["name"], timeout=300)
    log = (cli.home / "workspaces/default/jobs" / job["name"] / "artifacts/user_logs/std_log.txt").read_text()
    assert job["status"] == "Completed", log
    assert "[amlemu] WARNING: python 3.9 → 3.11" in log
    assert "[amlemu] WARNING: numpy 1.21.6 → 1.23.2 (1.21.6 requires Python <3.11" in log
    assert "numpy 1.23.2 python (3, 11)" in log
    assert "[build] Resolved" in log and "[build] Installed" in log

    summary = json.loads(cli.run("environment", "build", "--name", "py39").stdout)
    assert summary["cached"] is True and summary["substitutions"][0].startswith("python 3.9 → 3.11")

    from emulator.runtime.builds import build_record

    monkeypatch.setenv("AMLEMU_HOME", str(cli.home))
    record = build_record({"requirements": ["numpy==1.21.6"], "python": "3.9"})
    assert record and any(s.startswith("numpy 1.21.6 → 1.23.2") for s in record["substitutions"])

    monkeypatch.setenv("AMLEMU_PINS", "strict")
    build_fails(cli, "py39", "asks for Python 3.9", "no Python 3.9 on this machine", "uv python install 3.9")
    assert partial_builds(cli.home) == []


def test_bad_input_is_refused_with_its_cause_and_fix(cli, tmp_path):
    """A conda-only package, a -r file that is not there, a pin that exists for no Python, a package that does not
    exist: one error each, naming it, and nothing half-built in the cache."""
    line = create_fails(
        cli, "environment", "create", "--name", "cuda", "--image", "x:1",
        "--conda-file", str(conda(tmp_path, "cuda", "python=3.10", "cudatoolkit=11.8", pip=("torch",))),
    )  # fmt: skip
    assert "'cudatoolkit' exists only on conda channels" in line and "Remove it" in line
    line = create_fails(
        cli, "environment", "create", "--name", "reqs", "--image", "x:1",
        "--conda-file", str(conda(tmp_path, "reqs", pip=("-r requirements.txt",))),
    )  # fmt: skip
    assert f"{tmp_path / 'requirements.txt'} does not exist" in line and "-r requirements.txt" in line

    write(tmp_path / "requirements.txt", "numpy==9.9.9\n")
    register(cli, tmp_path, "reqs", pip=("-r requirements.txt",))  # now it is there: read and kept
    build_fails(cli, "reqs", "'numpy==9.9.9' names no version of numpy", "Pin one of those")
    register(cli, tmp_path, "nopkg", pip=("amlemu-no-such-package-xyz==1.0",))
    build_fails(cli, "nopkg", "'amlemu-no-such-package-xyz' is not on the package index")
    assert partial_builds(cli.home) == []


@pytest.mark.parametrize("runtime", ["process"])
def test_a_deployment_with_a_pin_for_no_python_fails_with_the_reason(cli, tmp_path, monkeypatch, runtime):
    monkeypatch.setenv("AMLEMU_RUNTIME", runtime)
    deployment = deploy(cli, tmp_path, "bad-ep", conda(tmp_path, "badpin", pip=("scikit-learn==0.0.1",)))
    assert deployment["provisioning_state"] == "Failed", deployment
    shown = cli.json("online-deployment", "show", "--name", "blue", "--endpoint-name", "bad-ep")
    assert "scikit-learn" in json.dumps(shown), shown
    assert partial_builds(cli.home) == []
