"""The guide (docs/) cannot drift from the product: every page's code blocks run, in order, in a fresh
AMLEMU_HOME, and every expected output it states is checked (see markdown_blocks.py for the block rules).

Each page is its own test (and its own xdist group), so ``-n 2`` spreads them.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from tests.conftest import _free_base_port, stop_endpoint_hosts
from tests.docs.markdown_blocks import parse
from tests.docs.runner import ROOT, page_environment, prepare_folder, run_page

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("[0-9][0-9]-*.md"))
ALL_PAGES = [DOCS / "README.md", *PAGES, DOCS / "glossary.md"]
MAX_SKIPPED_PER_PAGE = 2
SECTIONS = ("## In Azure ML", "## Run it", "## In the studio", "## Exercise", "## Where amlemu differs")
ACTIVE = {"NotStarted", "Queued", "Preparing", "Starting", "Provisioning", "Running", "Finalizing", "CancelRequested"}


def _cancel_active_jobs(env: dict[str, str], cwd) -> None:
    """A page that failed half-way may leave a sweep or pipeline running: cancel it (children go with it)."""
    listed = subprocess.run(["amlemu", "job", "list"], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    if listed.returncode != 0:
        return
    for job in json.loads(listed.stdout or "[]"):
        if job.get("status") in ACTIVE:
            subprocess.run(
                ["amlemu", "job", "cancel", "--name", job["name"]], env=env, cwd=cwd, capture_output=True, timeout=120
            )


# the longest pages first, so that with -n 2 no long page starts last (each page is independent of the others)
LONGEST_FIRST = ("13-", "10-", "11-", "09-")


def _schedule(page) -> tuple[int, str]:
    ranks = [i for i, prefix in enumerate(LONGEST_FIRST) if page.name.startswith(prefix)]
    return (ranks[0] if ranks else len(LONGEST_FIRST), page.name)


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(p, id=p.stem, marks=pytest.mark.xdist_group(f"docs-{p.stem}"))
        for p in sorted(ALL_PAGES, key=_schedule)
    ],
)
def test_page_blocks_run(page, tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    prepare_folder(work)
    env = page_environment(home, _free_base_port(), tmp_path / "tmp")
    started = time.monotonic()
    try:
        report = run_page(page, work, tmp_path / "blocks", env)
    finally:
        if home.exists():
            _cancel_active_jobs(env, work)
            stop_endpoint_hosts(home)
    seconds = time.monotonic() - started
    print(
        f"{page.name}: {report.ran} run, {report.compared} outputs checked, {report.written} files written, "
        f"{len(report.skipped)} not run, {seconds:.1f} s"
    )
    assert len(report.skipped) <= MAX_SKIPPED_PER_PAGE, [f"{b.where}: {b.reason}" for b in report.skipped]


@pytest.mark.parametrize("page", [pytest.param(p, id=p.stem) for p in PAGES])
def test_page_has_the_course_sections(page):
    """Each lesson explains the concept, runs it, shows the studio, ends with a checked exercise and the
    differences from Azure, in that order."""
    text = page.read_text()
    positions = [text.find(f"\n{heading}") for heading in SECTIONS]
    assert all(p >= 0 for p in positions), f"{page.name} lacks {[s for s, p in zip(SECTIONS, positions) if p < 0]}"
    assert positions == sorted(positions), f"{page.name}: sections out of order {SECTIONS}"
    exercise = text[positions[3] : positions[4]]
    exercise_line = text[: positions[3]].count("\n") + 1
    checked = [
        b
        for b in parse(page)
        if b.line > exercise_line
        and b.line < exercise_line + exercise.count("\n")
        and (b.kind == "output" or (b.kind == "python" and "assert " in b.text))
    ]
    assert checked, f"{page.name}: the exercise states no checked result (an output block or an assert)"


def test_index_and_links():
    """The index lists every page in order; every relative link in the guide names a file or folder that exists."""
    index = (DOCS / "README.md").read_text()
    listed = [m for m in re.findall(r"\]\(([0-9][0-9]-[^)#]+\.md)\)", index)]
    assert listed == [p.name for p in PAGES]
    for page in ALL_PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            assert path.exists(), f"{page.name}: broken link {target}"
