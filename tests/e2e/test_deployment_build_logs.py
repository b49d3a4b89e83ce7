"""A deployment whose environment does not build shows the build's failure in its default log
(``online-deployment get-logs``, no ``--container``), and says where the full build log is."""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.test_cli_jobs import write

MISSING = "amlemu-no-such-package-for-build-logs"


def _deployment_files(tmp_path: Path, init_body: str = "pass") -> None:
    write(tmp_path / "score" / "score.py", f"def init():\n    {init_body}\n\ndef run(raw):\n    return raw\n")
    write(
        tmp_path / "broken.yml",
        "name: blue\nendpoint_name: bld\ncode_configuration: {code: ./score, scoring_script: score.py}\n"
        "environment:\n  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest\n"
        "  conda_file: ./conda.yml\ninstance_count: 1\n",
    )
    write(
        tmp_path / "conda.yml",
        f"name: broken\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - {MISSING}\n",
    )
    write(
        tmp_path / "fixed.yml",
        "name: blue\nendpoint_name: bld\ncode_configuration: {code: ./score, scoring_script: score.py}\n"
        "environment: azureml:AzureML-sklearn-1.5@latest\ninstance_count: 1\n",
    )


def test_the_default_log_shows_a_failed_build_and_where_its_full_log_is(cli, tmp_path):
    _deployment_files(tmp_path)
    cli.run("online-endpoint", "create", "--name", "bld")
    failed = cli.run("online-deployment", "create", "--file", str(tmp_path / "broken.yml"), check=False)
    assert failed.returncode != 0 and MISSING in failed.stderr + failed.stdout

    logs = cli.run("online-deployment", "get-logs", "--name", "blue", "--endpoint-name", "bld").stdout
    assert "failed before its scoring server started" in logs and MISSING in logs
    assert "EmulatorError:" not in logs  # amlemu's own reason, not an exception's type
    full = re.search(r"\[amlemu\] Full build log: (\S+)", logs)
    assert full, logs
    build_log = Path(full[1])
    assert build_log.is_file() and MISSING in build_log.read_text()
    assert "--container storage-initializer" in logs
    # --lines bounds the build's lines shown; the reason and where the full log is stay
    short = cli.run("online-deployment", "get-logs", "--name", "blue", "--endpoint-name", "bld", "-l", "1").stdout
    assert "Last lines of its preparation:" in short and f"Full build log: {build_log}" in short
    preparation = short.split("Last lines of its preparation:\n", 1)[1].split("\n[amlemu] Full build log", 1)[0]
    assert len(preparation.splitlines()) == 1

    # fixed: the replicas' own log again, the failure gone from it
    cli.run("online-deployment", "update", "--file", str(tmp_path / "fixed.yml"))
    logs = cli.run("online-deployment", "get-logs", "--name", "blue", "--endpoint-name", "bld").stdout
    assert "failed before its scoring server started" not in logs and logs.strip()
    # broken again: the failed update comes first, then the log of the replica that still serves
    assert cli.run("online-deployment", "update", "--file", str(tmp_path / "broken.yml"), check=False).returncode
    again = cli.run("online-deployment", "get-logs", "--name", "blue", "--endpoint-name", "bld").stdout
    first_replica_line = logs.splitlines()[0]
    assert 0 <= again.index("(generation 3)") < again.index(first_replica_line)


def test_a_replica_that_fails_at_start_shows_its_own_log(cli, tmp_path):
    _deployment_files(tmp_path, init_body="raise RuntimeError('init went wrong: boom')")
    cli.run("online-endpoint", "create", "--name", "bld")
    failed = cli.run("online-deployment", "create", "--file", str(tmp_path / "fixed.yml"), check=False)
    assert failed.returncode != 0
    logs = cli.run("online-deployment", "get-logs", "--name", "blue", "--endpoint-name", "bld").stdout
    assert "init went wrong: boom" in logs and "failed before its scoring server started" not in logs
