"""The studio in a real browser: Playwright for Python driving Debian's chromium, headless.

Each test module shares one workspace (a fresh ``AMLEMU_HOME``), one studio serving it on a free port in a
thread, and one browser: a workspace is run through its life once per module, and each test looks at it the
way a person would. Playwright never downloads a browser here: the tests launch ``/usr/bin/chromium``
(``.ci/run`` installs it) and fail, never skip, when it is missing.

Screenshots of every page a test visits go to ``$AMLEMU_ARTIFACTS/studio`` (default
``test-artifacts/studio/`` under the repository, git-ignored), one PNG per page and state.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, local_home

CHROMIUM = Path("/usr/bin/chromium")


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("AMLEMU_ARTIFACTS") or ROOT / "test-artifacts") / "studio"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A local backend in a fresh AMLEMU_HOME shared by the module's tests (endpoint hosts stopped at the end)."""
    import backends

    with local_home(tmp_path_factory.mktemp("studio") / "amlemu-home"):
        yield backends.connect("local")


@pytest.fixture(scope="module")
def studio(workspace):
    """``amlemu studio`` on the module's workspace, on a free port of 127.0.0.1."""
    from emulator.studio.server import Studio

    with Studio(workspace.store) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: the studio's browser tests drive Debian's chromium. Install it with "
            "`apt-get install chromium` (.ci/run does)."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()


class StudioPage:
    """A browser tab on the studio: ``open(path)``, ``shot(name)`` for the artifacts, and the Playwright page."""

    def __init__(self, page, studio, module: str):
        self.page, self.studio, self.module = page, studio, module
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def url(self, path: str) -> str:
        return self.studio.url.rstrip("/") + path

    def open(self, path: str):
        response = self.page.goto(self.url(path))
        assert response is not None and response.ok, f"GET {path}: {response and response.status}"
        return self.page

    def shot(self, name: str) -> Path:
        path = artifacts_dir() / f"{self.module}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def studio_page(browser, studio, request):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    tab = StudioPage(page, studio, request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"))
    try:
        yield tab
    finally:
        context.close()
    assert not tab.errors, f"the page's script failed: {tab.errors}"
