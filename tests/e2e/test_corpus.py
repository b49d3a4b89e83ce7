"""The corpus (``tests/corpus``): specs shaped like Azure ML's public examples, run as a user runs them.

Each spec is a folder holding the user's files (job, environment, compute, endpoint and deployment
YAML, conda files, scripts, SDK programs) and ``expect.yml``: the steps to run (``amlemu`` commands,
shell scripts written for ``az ml``, ``python sdk_script.py``) and what Azure ML would show after
each one: exit status, the printed JSON (checked with JMESPath expressions), text in the output,
files written. ``tests/corpus/README.md`` says which example each spec mirrors.

A spec runs in a copy of the corpus (so ``../_shared`` and ``../_data`` resolve as in the source
tree) with its own ``AMLEMU_HOME``, shared by all its steps. The environment cache
(``$AMLEMU_HOME/cache``: virtualenvs keyed by a hash of what defines them) is shared by every spec
of the session, as it is shared by a user's workspaces: an environment is built once per run
(``AMLEMU_CORPUS_CACHE=<folder>`` keeps it between runs).

``expect.yml``::

    mirrors: [cli/jobs/basics/hello-world.yml]   # the public example(s) the spec takes its facts from
    markers: [docker]                            # optional pytest markers
    env: {AMLEMU_RUNTIME: docker}                # optional variables for every step
    steps:
      - run: amlemu job create --file job.yml --stream   # bash, in the spec's folder (or `cwd:`)
        exit: 0                                  # the default; `nonzero` for an expected failure
        timeout: 300                             # seconds (the default)
        json: {status: Completed, "metrics.hello_metric": {$between: [0, 1]}}
        stdout: [hello world]                    # text that must appear (also `stderr:`, `output:`)
        save: {JOB: name}                        # a value of the JSON, as $JOB for the next steps
        save_stdout: URI                         # the whole stdout, stripped, as $URI
        files: {dl/named-outputs/out/x.txt: {$contains: hello}}

Keys of ``json`` are JMESPath expressions; ``@`` is the whole document. An expected value is a
literal (equal), a list (element by element), a mapping (a partial match of a JSON object), or
operators: ``$eq $ne $contains $not_contains $matches $icase $gt $ge $lt $le $between $approx
$len $exists $type $one_of $any_of $all_of $each $keys $parsed`` (``$parsed``: a string holding
JSON is decoded first). ``${VAR}`` in expected strings and file names is a saved value.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jmespath
import pytest
import yaml

from emulator import config
from tests.conftest import ROOT, stop_endpoint_hosts

CORPUS = ROOT / "tests" / "corpus"
DEFAULT_TIMEOUT = 300
STEP_KEYS = {
    "run",
    "cwd",
    "exit",
    "timeout",
    "json",
    "stdout",
    "stderr",
    "output",
    "save",
    "save_stdout",
    "files",
    "note",
}
SPEC_KEYS = {"mirrors", "markers", "env", "steps", "description"}
MISSING = object()


def spec_dirs() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if (p / "expect.yml").is_file() and not p.name.startswith("_"))


def load_spec(folder: Path) -> dict:
    spec = yaml.safe_load((folder / "expect.yml").read_text())
    unknown = set(spec) - SPEC_KEYS
    assert not unknown, f"{folder.name}/expect.yml: unknown keys {sorted(unknown)} (known: {sorted(SPEC_KEYS)})"
    for i, step in enumerate(spec["steps"], 1):
        unknown = set(step) - STEP_KEYS
        assert not unknown, f"{folder.name}/expect.yml step {i}: unknown keys {sorted(unknown)}"
        assert "run" in step, f"{folder.name}/expect.yml step {i}: no `run`"
    return spec


def params() -> list:
    out = []
    for folder in spec_dirs():
        marks = [
            getattr(pytest.mark, m)
            for m in (yaml.safe_load((folder / "expect.yml").read_text()) or {}).get("markers", [])
        ]
        out.append(pytest.param(folder.name, marks=marks, id=folder.name))
    return out


# ---------------------------------------------------------------- expectations


class Mismatch(AssertionError):
    pass


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _close(a: Any, b: Any) -> bool:
    return _number(a) and _number(b) and math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-4)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if _number(value):
        return "number"
    return {str: "str", list: "list", dict: "dict"}.get(type(value), type(value).__name__)


def _ok(actual: Any, expected: Any) -> bool:
    try:
        check(actual, expected, "")
        return True
    except Mismatch:
        return False


def check(actual: Any, expected: Any, where: str) -> None:
    """Raise Mismatch, naming ``where``, unless ``actual`` meets ``expected``."""
    if isinstance(expected, dict) and expected and all(str(k).startswith("$") for k in expected):
        for op, arg in expected.items():
            _operator(actual, op, arg, where)
        return
    if actual is MISSING:
        raise Mismatch(f"{where or 'value'}: missing (expected {expected!r})")
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            raise Mismatch(f"{where}: expected an object, got {actual!r}")
        for key, sub in expected.items():
            check(actual.get(key, MISSING), sub, f"{where}.{key}" if where else str(key))
        return
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            raise Mismatch(f"{where}: expected {expected!r}, got {actual!r}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            check(a, e, f"{where}[{i}]")
        return
    if isinstance(actual, bool) != isinstance(expected, bool) or actual != expected:
        raise Mismatch(f"{where}: expected {expected!r}, got {actual!r}")


def _operator(actual: Any, op: str, arg: Any, where: str) -> None:
    fail = Mismatch(f"{where or 'value'}: expected {op} {arg!r}, got {actual!r}"[:2000])
    if op == "$exists":
        if (actual is not MISSING and actual is not None) != bool(arg):
            raise fail
        return
    if actual is MISSING:
        raise Mismatch(f"{where or 'value'}: missing (expected {op} {arg!r})")
    if op == "$eq":
        check(actual, arg, where)
    elif op == "$ne":
        if _ok(actual, arg):
            raise fail
    elif op in ("$contains", "$not_contains"):
        if isinstance(actual, str):
            found = str(arg) in actual
        elif isinstance(actual, list):
            found = any(_ok(item, arg) for item in actual)
        elif isinstance(actual, dict):
            found = arg in actual
        else:
            found = False
        if found != (op == "$contains"):
            raise fail
    elif op == "$matches":
        if re.search(str(arg), actual if isinstance(actual, str) else json.dumps(actual)) is None:
            raise fail
    elif op == "$icase":
        if not isinstance(actual, str) or actual.lower() != str(arg).lower():
            raise fail
    elif op in ("$gt", "$ge", "$lt", "$le"):
        compare = {"$gt": float.__gt__, "$ge": float.__ge__, "$lt": float.__lt__, "$le": float.__le__}[op]
        if not _number(actual) or not compare(float(actual), float(arg)):
            raise fail
    elif op == "$between":
        low, high = arg
        if not _number(actual) or not low <= actual <= high:
            raise fail
    elif op == "$approx":
        values = arg if isinstance(arg, list) else [arg]
        got = actual if isinstance(arg, list) else [actual]
        if not isinstance(got, list) or len(got) != len(values) or not all(map(_close, got, values)):
            raise fail
    elif op == "$len":
        if not hasattr(actual, "__len__"):
            raise fail
        check(len(actual), arg, f"len({where})")
    elif op == "$type":
        if _type_name(actual) != arg:
            raise fail
    elif op == "$one_of":
        if not any(_ok(actual, option) for option in arg):
            raise fail
    elif op == "$any_of":
        if not any(_ok(actual, option) for option in arg):
            raise fail
    elif op == "$all_of":
        for option in arg:
            check(actual, option, where)
    elif op == "$each":
        if not isinstance(actual, list):
            raise fail
        for i, item in enumerate(actual):
            check(item, arg, f"{where}[{i}]")
    elif op == "$keys":
        if not isinstance(actual, dict) or not set(arg) <= set(actual):
            raise fail
    elif op == "$parsed":
        if isinstance(actual, str):
            try:
                actual = json.loads(actual)
            except ValueError:
                raise Mismatch(f"{where}: expected JSON text, got {actual!r}") from None
        check(actual, arg, where)
    else:
        raise AssertionError(f"unknown operator {op} in expect.yml")


def json_document(stdout: str) -> Any:
    """The JSON a command printed: the whole output, else the text from the first line that starts a
    JSON value running to the end (``--stream`` logs and a script's prints come before it)."""
    text = stdout.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    for match in re.finditer(r"(?m)^[\[{\"]", text):
        try:
            return json.loads(text[match.start() :])
        except ValueError:
            continue
    raise Mismatch("no JSON document in the output")


def substitute(value: Any, saved: dict[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)\}", lambda m: saved.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [substitute(v, saved) for v in value]
    if isinstance(value, dict):
        return {substitute(k, saved): substitute(v, saved) for k, v in value.items()}
    return value


def check_text(text: str, expected: Any, where: str) -> None:
    if isinstance(expected, str):
        expected = [expected]
    if isinstance(expected, list):
        for piece in expected:
            if piece not in text:
                raise Mismatch(f"{where}: {piece!r} not found")
    else:
        check(text, expected, where)


# ---------------------------------------------------------------- running


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """The environment cache of this run's specs; ``AMLEMU_CORPUS_CACHE`` names a folder to keep it
    in between runs (the virtualenvs of the curated and conda environments are built once)."""
    kept = os.environ.get("AMLEMU_CORPUS_CACHE")
    if kept:
        return config.private_dir(Path(kept) / "cache")
    return tmp_path_factory.mktemp("corpus-cache")


def spec_home(name: str, tmp_path: Path, shared_cache: Path) -> Path:
    """A new ``AMLEMU_HOME`` for spec ``name`` whose ``cache`` is the shared one. A virtualenv's
    scripts name the interpreter by the path it was built under (``<home>/cache/venvs/...``), so a
    cache kept between runs is reached through homes kept at the same paths (``<kept>/homes/<spec>``)."""
    kept = os.environ.get("AMLEMU_CORPUS_CACHE")
    home = Path(kept) / "homes" / name if kept else tmp_path / "amlemu-home"
    shutil.rmtree(home, ignore_errors=True)  # the state of an earlier run (the cache link only, not its target)
    config.private_dir(home.parent)
    home.mkdir(mode=0o700)
    (home / "cache").symlink_to(shared_cache, target_is_directory=True)
    return home


def _env(home: Path, extra: dict[str, str], saved: dict[str, str]) -> dict[str, str]:
    # a user's shell: no amlemu, MLflow or Azure ML settings of this session, and Python writes
    # bytecode (this machine sets PYTHONDONTWRITEBYTECODE, under which every job re-compiles the
    # packages of its environment at each import)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AMLEMU_", "MLFLOW_", "AZUREML_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        AMLEMU_HOME=str(home),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in extra.items()})
    env.update(saved)
    return env


def _describe(i: int, step: dict, proc: subprocess.CompletedProcess | None, seconds: float) -> str:
    text = f"step {i}: {step['run'].strip()}"
    if proc is not None:
        log, document = _split_output(proc.stdout)
        text += f"\n  exit {proc.returncode} after {seconds:.1f} s\n  stdout (tail):\n{_tail(log)}"
        if document:
            text += f"\n  printed JSON (start):\n{_tail(document[:3000], 60)}"
        text += f"\n  stderr (tail):\n{_tail(proc.stderr)}"
    return text


def _split_output(stdout: str) -> tuple[str, str]:
    """The output before the JSON document a command ended with, and that document's text."""
    for match in re.finditer(r"(?m)^[\[{]", stdout):
        try:
            json.loads(stdout[match.start() :])
        except ValueError:
            continue
        return stdout[: match.start()], stdout[match.start() :]
    return stdout, ""


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines()[-lines:])


@pytest.mark.parametrize("name", params())
def test_corpus_spec(name, tmp_path, shared_cache):
    spec = load_spec(CORPUS / name)
    work = tmp_path / "corpus"
    for folder in [CORPUS / name, *(p for p in CORPUS.iterdir() if p.is_dir() and p.name.startswith("_"))]:
        shutil.copytree(folder, work / folder.name, ignore=shutil.ignore_patterns("__pycache__"))
    home = spec_home(name, tmp_path, shared_cache)
    saved: dict[str, str] = {}
    try:
        for i, step in enumerate(spec["steps"], 1):
            _run_step(i, step, work / name, home, spec.get("env") or {}, saved)
    finally:
        stop_endpoint_hosts(home)


def _run_step(i: int, step: dict, folder: Path, home: Path, extra: dict, saved: dict[str, str]) -> None:
    started = time.monotonic()
    try:
        proc = subprocess.run(
            ["bash", "-c", step["run"]],
            cwd=folder / step.get("cwd", "."),
            env=_env(home, extra, saved),
            capture_output=True,
            text=True,
            timeout=step.get("timeout", DEFAULT_TIMEOUT),
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        raise AssertionError(f"{_describe(i, step, None, 0)}\n  timed out after {exc.timeout} s\n{_tail(out)}")
    seconds = time.monotonic() - started
    print(f"[corpus] {folder.name} step {i} ({seconds:.1f} s): {step['run'].strip()[:100]}")
    try:
        expected_exit = step.get("exit", 0)
        if expected_exit == "nonzero":
            if proc.returncode == 0:
                raise Mismatch("expected a non-zero exit, got 0")
        elif proc.returncode != expected_exit:
            raise Mismatch(f"expected exit {expected_exit}, got {proc.returncode}")
        for stream in ("stdout", "stderr", "output"):
            if stream in step:
                text = proc.stdout + proc.stderr if stream == "output" else getattr(proc, stream)
                check_text(text, substitute(step[stream], saved), stream)
        if "json" in step or "save" in step:
            document = json_document(proc.stdout)
            for var, expression in (step.get("save") or {}).items():
                value = jmespath.search(expression, document)
                if value is None:
                    raise Mismatch(f"save {var}: {expression} is not in the output")
                saved[var] = value if isinstance(value, str) else json.dumps(value)
            for expression, expected in (step.get("json") or {}).items():
                found = jmespath.search(expression, document) if expression != "@" else document
                check(MISSING if found is None else found, substitute(expected, saved), f"json {expression}")
        if "save_stdout" in step:
            saved[step["save_stdout"]] = proc.stdout.strip()
        for relpath, expected in (step.get("files") or {}).items():
            path = folder / substitute(relpath, saved)
            expected = substitute(expected, saved)
            if expected == {"$exists": False}:
                if path.exists():
                    raise Mismatch(f"file {relpath}: exists")
                continue
            if not path.is_file():
                raise Mismatch(f"file {relpath}: missing")
            check_text(path.read_text(errors="replace"), expected, f"file {relpath}")
    except Mismatch as exc:
        raise AssertionError(f"{exc}\n{_describe(i, step, proc, seconds)}") from None
