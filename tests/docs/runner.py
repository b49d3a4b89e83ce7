"""Runs a guide page's code blocks as a reader would, in a fresh AMLEMU_HOME and a copy of the samples.

Bash blocks behave like one terminal: each runs in its own ``bash`` (``set -eo pipefail``), starting from the
variables, exports and folder the previous block left. Python blocks share one interpreter per page
(``python_driver.py``). A block that exits non-zero, or whose ``output`` block is not in what it printed,
fails the page with the block's text, its output and its exit code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.docs.markdown_blocks import Block, missing_output, parse

ROOT = Path(__file__).resolve().parents[2]
BLOCK_TIMEOUT_S = 180  # a hang guard: the guide's slowest block (a sweep or AutoML job) takes well under a minute
OUTPUT_TAIL = 6000

# Each bash block: restore the previous block's variables and folder, run the block, save them again.
BASH_WRAPPER = r"""
__guide_state=$1
__guide_names="$(compgen -v | sort)"
if [ -f "$__guide_state/vars.sh" ]; then source "$__guide_state/vars.sh" 2>/dev/null || true; fi
cd "$(cat "$__guide_state/cwd")"
set -eo pipefail
source "$2"
set +eo pipefail
comm -13 <(printf '%s\n' "$__guide_names") <(compgen -v | sort) \
  | grep -Ev '^(__guide|BASH_|PIPESTATUS$|_$|OPTARG$|OPTIND$|REPLY$|COLUMNS$|LINES$)' \
  | while read -r name; do declare -p "$name"; done > "$__guide_state/vars.sh"
pwd > "$__guide_state/cwd"
env -0 > "$__guide_state/env"
"""

# what a reader's shell might hold that would point a page somewhere else than its fresh home
_FOREIGN = (
    "AMLEMU_BACKEND",
    "AMLEMU_WORKSPACE",
    "AMLEMU_RUNTIME",
    "AMLEMU_PORT",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_RUN_ID",
    "MLFLOW_EXPERIMENT_NAME",
    "ARM_CLOUD_METADATA_URL",
    "AZUREML_CURRENT_CLOUD",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "AZURE_TOKEN_CREDENTIALS",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
)


class GuideFailure(AssertionError):
    """A block failed: the message holds the block, its output and its exit code."""


@dataclasses.dataclass
class PageReport:
    ran: int = 0
    written: int = 0
    compared: int = 0
    skipped: list[Block] = dataclasses.field(default_factory=list)


def page_environment(home: Path, port: int, tmp: Path) -> dict[str, str]:
    """The reader's environment for one page: amlemu on PATH, a fresh home, a front-door port of its own,
    and a TMPDIR of its own (so a page's ``mktemp -d`` is cleaned up with the test's folder)."""
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN}
    bin_dir = str(Path(sys.executable).parent)
    tmp.mkdir(parents=True, exist_ok=True)
    env.update(
        AMLEMU_HOME=str(home),
        AMLEMU_PORT=str(port),
        TMPDIR=str(tmp),
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def prepare_folder(work: Path) -> None:
    """What the pages need from the repository, as they name it from its root: a copy of sample_models."""
    work.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "mlruns", "outputs", "*.pyc")
    shutil.copytree(ROOT / "sample_models", work / "sample_models", ignore=ignore)


def _failure(block: Block, why: str, output: str = "", code: int | None = None) -> GuideFailure:
    shown = output if len(output) <= OUTPUT_TAIL else "...\n" + output[-OUTPUT_TAIL:]
    return GuideFailure(
        f"{block.where}: {why}\n--- the {block.language} block ---\n{block.text}"
        + (f"--- exit code: {code}\n" if code is not None else "")
        + f"--- its output ---\n{shown}"
    )


class BashSession:
    """The page's terminal. Each block runs in its own process group, killed when the page ends, so a
    server a block starts in the background (``amlemu serve &``) stops with the page."""

    def __init__(self, state: Path, work: Path, env: dict[str, str]):
        self.state, self.env = state, env
        state.mkdir(parents=True, exist_ok=True)
        (state / "cwd").write_text(str(work))
        self.wrapper = state / "wrapper.sh"
        self.wrapper.write_text(BASH_WRAPPER)
        self.groups: list[int] = []

    @property
    def env_file(self) -> Path:
        return self.state / "env"

    @property
    def cwd(self) -> str:
        return (self.state / "cwd").read_text().strip()

    def run(self, block: Block, index: int) -> tuple[int, str]:
        source, output = self.state / f"block-{index}.sh", self.state / f"block-{index}.out"
        source.write_text(block.text)
        with open(output, "wb") as out:
            proc = subprocess.Popen(
                ["bash", str(self.wrapper), str(self.state), str(source)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
            self.groups.append(proc.pid)
            try:
                code = proc.wait(timeout=BLOCK_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                code = -signal.SIGKILL
        return code, output.read_text(errors="replace")

    def close(self) -> None:
        for group in self.groups:
            try:
                os.killpg(group, signal.SIGTERM)
            except ProcessLookupError:
                pass


class PythonSession:
    """The page's python interpreter (``python_driver.py``), started at its first python block."""

    def __init__(self, state: Path, env: dict[str, str], shell: BashSession):
        self.state, self.env, self.shell = state, env, shell
        self.proc: subprocess.Popen | None = None
        self.replies = -1

    def _start(self) -> None:
        read, write = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("python_driver.py")), str(write)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env,
            cwd=self.shell.cwd,
            pass_fds=(write,),
            text=True,
            start_new_session=True,
        )
        os.close(write)
        self.replies = read

    def run(self, block: Block, index: int) -> tuple[int, str]:
        if self.proc is None:
            self._start()
        assert self.proc and self.proc.stdin
        source, output = self.state / f"block-{index}.py", self.state / f"block-{index}.out"
        source.write_text(block.text)
        env_file = self.shell.env_file
        request = {
            "source": str(source),
            "output": str(output),
            "name": f"<{block.where}>",
            "cwd": self.shell.cwd,
            "env_file": str(env_file) if env_file.exists() else None,
        }
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.replies], [], [], BLOCK_TIMEOUT_S)
        answer = os.read(self.replies, 4096).decode() if ready else ""
        text = output.read_text(errors="replace") if output.exists() else ""
        if not answer:  # timed out, or the interpreter died
            self.close()
            return -signal.SIGKILL, text
        return json.loads(answer.splitlines()[0])["exit"], text

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.replies >= 0:
            os.close(self.replies)
            self.replies = -1


def run_page(page: Path, work: Path, state: Path, env: dict[str, str]) -> PageReport:
    """Run every block of ``page`` in order, from ``work``; raise GuideFailure at the first that fails."""
    report = PageReport()
    shell = BashSession(state, work, env)
    python = PythonSession(state, env, shell)
    last: tuple[Block, str] | None = None
    try:
        for index, block in enumerate(parse(page)):
            kind = block.kind
            if kind == "skip":
                if not block.reason:
                    raise _failure(block, "a block that is not run needs `<!-- not run: <reason> -->` above it")
                report.skipped.append(block)
            elif kind == "file":
                target = Path(shell.cwd) / block.file
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(block.text)
                report.written += 1
            elif kind == "output":
                if last is None:
                    raise _failure(block, "an output block must follow a bash or python block")
                gone = missing_output(block.text, last[1])
                if gone is not None:
                    raise _failure(last[0], f"expected output line not printed: {gone!r}", last[1])
                report.compared += 1
                last = None
            elif kind in ("bash", "python"):
                session = shell if kind == "bash" else python
                code, output = session.run(block, index)
                if code != 0:
                    raise _failure(block, "the block failed", output, code)
                report.ran += 1
                last = (block, output)
            else:
                raise _failure(block, "unknown block: give it bash/python, file=NAME, output, or skip + a reason")
    finally:
        python.close()
        shell.close()
    return report
