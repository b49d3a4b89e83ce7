"""Curated environments as Azure builds them: a job on each gets every package of Azure's list.

Each test submits real command jobs through the CLI; their environments are built by the real
builder (uv, the shared wheel cache) into one amlemu home shared by this module, so an environment
two tests use is built once. The import check runs in the job's own interpreter: it derives each
distribution's top-level modules from the installed metadata (``top_level.txt``, else ``RECORD``: what
``importlib.metadata.packages_distributions`` reads) and imports them all.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from emulator.environments import curated
from tests.conftest import SAMPLES, Cli, stop_endpoint_hosts

HEAVY = ("ACPT-pytorch-2.2-cuda12.1", "tensorflow-2.16-cuda12")  # framework builds: one test, below
# every other list once: a name that takes another's list (sklearn-1.0-ubuntu20.04-py38-cpu, ...) resolves to the
# same requirements, so to the same virtualenv (tests/unit/test_environment_refs.py checks that)
LIGHT = [
    name
    for name, env in curated.environments().items()
    if not env.emulated_by_amlemu
    and "same_as" not in curated.catalogue()["environments"][name]
    and not {"torch", "tensorflow"} & set(env.distributions())
]
BUILD_TIMEOUT_S = 900  # a first build on a cold wheel cache downloads the whole list

CHECK_IMPORTS = '''
"""Import every top-level module of each distribution named in wanted.json, as this interpreter finds them."""
import importlib
import importlib.metadata as md
import importlib.util
import json
import sys
import traceback
from pathlib import Path


def top_level(dist):
    """The distribution's top-level names as its metadata gives them: top_level.txt, else its RECORD's files
    (what importlib.metadata.packages_distributions reads; that function is Python 3.10+)."""
    text = dist.read_text("top_level.txt")
    if text:
        return set(text.split())
    names = set()
    for file in dist.files or ():
        first = file.parts[0] if len(file.parts) > 1 else file.name.split(".")[0]
        if not first.endswith((".dist-info", ".data", ".egg-info")) and first not in ("..", "__pycache__"):
            names.add(first)
    return names


report, failed = {}, []
for name in json.loads(Path(sys.argv[1]).read_text()):
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        report[name] = {"error": "not installed"}
        failed.append(name)
        continue
    listed = sorted(m for m in top_level(dist) if m.isidentifier() and not m.startswith("_"))
    # a name the metadata lists that is no module at all (a data folder, a bundled .so) is not an import name
    modules = [m for m in listed if importlib.util.find_spec(m) is not None]
    errors = {}
    if listed and not modules:
        errors["*"] = "none of its top-level names is a module: " + ", ".join(listed)
    for module in modules:
        try:
            importlib.import_module(module)
        except BaseException:
            errors[module] = traceback.format_exc(limit=4)
    report[name] = {"version": dist.version, "modules": modules, "errors": errors}
    if errors:
        failed.append(name)
Path("outputs").mkdir(exist_ok=True)
result = {"python": "%d.%d" % sys.version_info[:2], "executable": sys.executable, "packages": report}
Path("outputs/imports.json").write_text(json.dumps(result, indent=1))
print(json.dumps({"python": result["python"], "failed": failed}))
sys.exit(1 if failed else 0)
'''


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Cli:
    """One amlemu home for the module: environments built by one test are cached for the others."""
    home = tmp_path_factory.mktemp("curated-home")
    cli = Cli(home, tmp_path_factory.mktemp("curated-cwd"))
    yield cli
    stop_endpoint_hosts(home)


def wait_done(cli: Cli, name: str, timeout: float = BUILD_TIMEOUT_S) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = cli.json("job", "show", "--name", name)
        if job["status"] in ("Completed", "Failed", "Canceled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {name} still {job['status']} after {timeout} s")


def job_file(cli: Cli, name: str, folder: Path, environment: str, command: str) -> dict:
    """Submit a command job whose code is ``folder``; return the job's record once it ended."""
    spec = folder / "job.yml"
    spec.write_text(f"command: {command}\ncode: .\nenvironment: {environment}\nname: {name}\n")
    cli.json("job", "create", "--file", str(spec))
    return wait_done(cli, name)


def artifact(cli: Cli, job: str, path: str) -> Path:
    return cli.home / "workspaces" / "default" / "jobs" / job / "artifacts" / path


def log_tail(cli: Cli, job: str) -> str:
    log = artifact(cli, job, "user_logs/std_log.txt")
    return log.read_text()[-4000:] if log.exists() else "(no log)"


def import_check(cli: Cli, tmp_path: Path, name: str, job: str, then: str = "") -> dict:
    """A job on curated environment ``name`` that imports every package of its list; its report."""
    env = curated.get(name)
    code = tmp_path / job
    code.mkdir()
    (code / "check_imports.py").write_text(CHECK_IMPORTS)
    (code / "wanted.json").write_text(json.dumps(env.distributions()))
    record = job_file(
        cli, job, code, f"azureml:{env.workspace_name}@latest", "python check_imports.py wanted.json" + then
    )
    report_path = artifact(cli, job, "outputs/imports.json")
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    broken = {k: v for k, v in report.get("packages", {}).items() if v.get("error") or v.get("errors")}
    assert record["status"] == "Completed", f"{name}: {broken or log_tail(cli, job)}"
    assert set(report["packages"]) == set(env.distributions())
    return report


@pytest.mark.parametrize("name", LIGHT)
def test_every_package_of_azures_list_imports_in_a_job(shared, tmp_path, name):
    report = import_check(shared, tmp_path, name, "imports-" + name.lower().replace(".", "-"))
    packages = report["packages"]
    assert all(packages[dist]["version"] for dist in packages)
    if "scikit-learn" in packages:
        assert "sklearn" in packages["scikit-learn"]["modules"]  # the import names come from the metadata


def test_pytorch_and_tensorflow_environments_run_on_the_cpu(shared, tmp_path):
    """The one test that builds framework environments: torch from this machine's CPU wheel (never a
    CUDA build), tensorflow 2.16.2 without its CUDA extra."""
    torch_report = import_check(
        shared,
        tmp_path,
        "ACPT-pytorch-2.2-cuda12.1",
        "imports-pytorch",
        ' && python -c "import torch; assert not torch.cuda.is_available(); print(torch.ones(3).sum().item())"',
    )
    assert torch_report["packages"]["torch"]["version"] == "2.13.0+cpu"
    tf_report = import_check(
        shared,
        tmp_path,
        "tensorflow-2.16-cuda12",
        "imports-tensorflow",
        ' && python -c "import tensorflow as tf; print(float(tf.reduce_sum(tf.ones([3]))))"',
    )
    assert tf_report["packages"]["tensorflow"]["version"] == "2.16.2"
    assert "3.0" in log_tail(shared, "imports-tensorflow")


SAVE_MODEL = """
import argparse

import mlflow
import mlflow.sklearn
import pandas as pd
from sklearn.linear_model import LogisticRegression

parser = argparse.ArgumentParser()
parser.add_argument("--data")
args = parser.parse_args()
frame = pd.read_csv(args.data)
X, y = frame.drop(columns=["species"]), frame["species"]
model = LogisticRegression(max_iter=500).fit(X, y)
mlflow.log_metric("training_accuracy", model.score(X, y))
mlflow.sklearn.save_model(model, "outputs/model")
print("reloaded:", mlflow.sklearn.load_model("outputs/model").predict(X.head(2)).tolist())
"""


def test_a_model_saved_with_mlflow_sklearn_in_the_curated_sklearn_environment(shared, tmp_path):
    """The public example that failed with "No module named 'skops'"."""
    code = tmp_path / "save-model"
    code.mkdir()
    (code / "train.py").write_text(SAVE_MODEL)
    data = SAMPLES / "iris" / "data" / "iris.csv"
    job = job_file(
        shared,
        "save-sklearn-model",
        code,
        "azureml://registries/azureml/environments/sklearn-1.5/labels/latest",
        f"python train.py --data {data}",
    )
    assert job["status"] == "Completed", log_tail(shared, "save-sklearn-model")
    assert artifact(shared, "save-sklearn-model", "outputs/model/MLmodel").exists()
    assert "reloaded:" in log_tail(shared, "save-sklearn-model")
    assert "training_accuracy" in job["metrics"], job["metrics"]


def test_environment_show_lists_the_versions_a_job_gets_next_to_azures(shared, tmp_path):
    shown = shared.json("environment", "show", "--name", "AzureML-sklearn-1.5", "--label", "latest")
    by_registry = shared.json("environment", "show", "--name", "sklearn-1.5", "--registry-name", "azureml")
    assert shown["packages"] == by_registry["packages"] and by_registry["name"] == "sklearn-1.5"
    assert shown["id"] == "azureml://registries/azureml/environments/sklearn-1.5/labels/latest"
    rows = {row["name"]: row for row in shown["packages"]}
    env = curated.get("sklearn-1.5")
    assert list(rows) == [*env.packages, *env.adds]
    assert rows["scikit-learn"]["azure"] == "~=1.5.0" and rows["scikit-learn"]["local"].startswith("1.5.")
    assert rows["azureml-mlflow"]["azure"] == "latest"
    assert rows["skops"] == {**rows["skops"], "azure": None, "added_by": "amlemu"}
    if curated.describe(env, "fast").requirements is not None:  # built by the tests above: the venv's versions
        assert all(row["local"] for row in shown["packages"]), shown["packages"]
        assert shown["python"] == {"azure": "3.10", "local": "3.11"}
        assert any(line.startswith("numpy ~=1.22.0 → ") for line in shown["substitutions"])
    assert shown["local_runtime"].startswith("fast mode")
    assert shown["azure_list"]["source"].endswith("sklearn-1.5/context/conda_dependencies.yaml")
    listed = shared.json("environment", "list", "--registry-name", "azureml")
    assert {e["name"] for e in listed} == set(curated.environments())


def test_show_refuses_what_amlemu_does_not_know(shared):
    proc = shared.run("environment", "show", "--name", "AzureML-no-such-env", "--label", "latest", check=False)
    assert proc.returncode != 0 and "AzureML-no-such-env" in proc.stderr
    proc = shared.run("environment", "show", "--name", "no-such-env", "--registry-name", "azureml", check=False)
    assert proc.returncode != 0 and "sklearn-1.5" in proc.stderr  # names the ones it knows
    proc = shared.run("environment", "show", "--name", "sklearn-1.5", "--registry-name", "someone-else", check=False)
    assert proc.returncode != 0 and "not emulated" in proc.stderr


def test_exact_mode_builds_azures_python(shared, tmp_path, monkeypatch):
    """minimal-ubuntu20.04-py39-cpu-inference asks for Python 3.9, which pyenv has here: exact mode runs on it."""
    monkeypatch.setenv("AMLEMU_CURATED", "exact")
    report = import_check(shared, tmp_path, "minimal-ubuntu20.04-py39-cpu-inference", "exact-minimal-py39")
    assert report["python"] == "3.9"
    shown = shared.json("environment", "show", "--name", "AzureML-minimal-ubuntu20.04-py39-cpu-inference")
    assert shown["curated_mode"] == "exact" and shown["python"] == {"azure": "3.9", "local": "3.9"}
    assert shown["local_runtime"].startswith("exact mode")
