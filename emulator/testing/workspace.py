"""One test's view of a workspace: its client, the names it creates and what teardown must delete.

The pytest plugin builds a :class:`ScopedWorkspace` per test. Locally it is a fresh workspace (its own
folder under the run's ``AMLEMU_HOME``), so a test sees nothing of another and teardown can also check
that nothing of it is still running. On Azure every test shares the configured workspace; isolation
comes from the run's name prefix (:mod:`emulator.testing.names`) and from deleting, at teardown, every
endpoint and cluster the test created, even when it failed or was interrupted: on Azure they cost money.

Helpers that fail raise :class:`AmlTestFailure`, an ``AssertionError`` whose message names the cause
and the fix, so a test reads as failed (not errored) with one message.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.testing import leaks
from emulator.testing.names import RunNames


class AmlTestFailure(AssertionError):
    """A harness step that could not do what the test asked: the message names the cause and the fix."""


def one_line(exc: BaseException, limit: int = 2000) -> str:
    """An exception's message with its whitespace folded, shortened to ``limit`` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Cleanup:
    """Something a test created: what it is, how to delete it, and where it is (printed by ``--aml-keep``)."""

    what: str
    delete: Callable[[], Any]
    where: str = ""


class ScopedWorkspace:
    """A workspace for one test (or one session): the client, and a stack of deletions run at teardown.

    Args:
        client: an ``MLClient``-shaped backend (``backends.connect(...)``).
        backend: ``local`` or ``azure``.
        names: the run's :class:`RunNames` (its prefix is used on Azure only).
        tmp: a folder of this test's for downloads.
        search_dirs: where a relative path is looked for after the current folder (the test file's folder,
            the rootdir).
        home: the local state folder (``AMLEMU_HOME``), None on Azure.
    """

    def __init__(
        self,
        client: Any,
        backend: str,
        names: RunNames,
        tmp: Path,
        search_dirs: Iterable[Path] = (),
        home: Path | None = None,
    ):
        self.client, self.backend, self.names, self.tmp, self.home = client, backend, names, Path(tmp), home
        self.search_dirs = [Path(d) for d in search_dirs]
        self.workspace = getattr(client, "workspace_name", None)
        self._teardown: list[Cleanup] = []
        self._counter = 0
        self._tracking_uri: str | None = None

    @property
    def is_local(self) -> bool:
        return self.backend == "local"

    # -- names and paths ---------------------------------------------------------------------------------------
    def name(self, kind: str, wanted: str | None, default: str) -> str:
        """The name to create: on Azure the run's prefix plus ``wanted`` (or ``default``); locally ``wanted`` as
        given, or ``default-<n>`` (a workspace of its own needs no prefix)."""
        if not self.is_local:
            return self.names.prefixed(kind, wanted or default)
        if wanted:
            return wanted
        self._counter += 1
        return f"{default}-{self._counter}"

    def path(self, value: str | os.PathLike, what: str, fixture: str) -> Path:
        """``value`` as an existing path: absolute, or relative to the current folder, the test file's folder or
        the rootdir (the first that has it); else an AmlTestFailure naming where it looked."""
        path = Path(value).expanduser()
        candidates = [path] if path.is_absolute() else [Path.cwd() / path, *(d / path for d in self.search_dirs)]
        for candidate in candidates:
            if candidate.exists():
                return candidate.resolve()
        looked = ", ".join(dict.fromkeys(str(c) for c in candidates))
        raise AmlTestFailure(
            f"{fixture}: the {what} '{value}' does not exist (looked for {looked}). Fix the path: relative to the "
            "folder pytest runs in or to the test file, or absolute."
        )

    # -- teardown ----------------------------------------------------------------------------------------------
    def on_teardown(self, what: str, delete: Callable[[], Any], where: str = "") -> Cleanup:
        """Run ``delete`` at teardown (last registered, first run); ``where`` says where ``what`` is when
        ``--aml-keep`` keeps it."""
        cleanup = Cleanup(what, delete, where)
        self._teardown.append(cleanup)
        return cleanup

    def delete_now(self, cleanup: Cleanup) -> None:
        """Run one deletion now instead of at teardown (a half-made endpoint must not keep running)."""
        if cleanup in self._teardown:
            self._teardown.remove(cleanup)
        cleanup.delete()

    def teardown(self, keep: bool = False) -> tuple[list[str], list[str]]:
        """Delete what the test created (newest first); with ``keep``, delete nothing and say where it all is.
        Returns (problems, kept): deletions that failed, and the lines ``--aml-keep`` prints."""
        problems, kept = [], []
        while self._teardown:
            cleanup = self._teardown.pop()
            if keep:
                kept.append(f"{cleanup.what}{': ' + cleanup.where if cleanup.where else ''}")
                continue
            try:
                cleanup.delete()
            except Exception as exc:  # one failed deletion must not stop the others
                problems.append(f"could not delete {cleanup.what}: {one_line(exc, 500)}")
        return problems, kept

    def left_running(self) -> list[Any]:
        """What this workspace still runs locally (processes, containers); nothing to check on Azure."""
        if not self.is_local or self.home is None or not self.workspace:
            return []
        return leaks.left_running(self.home, self.workspace)

    def stop_everything(self) -> list[Any]:
        """Stop whatever this workspace still runs locally; returns what was found."""
        if not self.is_local or self.home is None or not self.workspace:
            return []
        return leaks.stop_workspace(self.home, self.workspace)

    def where(self) -> str:
        """Where this workspace's state is, for ``--aml-keep`` and messages."""
        if self.is_local:
            return f"AMLEMU_HOME={self.home} AMLEMU_WORKSPACE={self.workspace}"
        client = self.client
        return (
            f"Azure ML workspace {getattr(client, 'workspace_name', '?')} "
            f"(resource group {getattr(client, 'resource_group_name', '?')}), names prefixed '{self.names.prefix}'"
        )

    # -- what the fixtures create ------------------------------------------------------------------------------
    @property
    def tracking_uri(self) -> str:
        """The workspace's MLflow tracking URI (as Azure gives it: ``workspaces.get().mlflow_tracking_uri``)."""
        if self._tracking_uri is None:
            self._tracking_uri = self.client.workspaces.get().mlflow_tracking_uri
        return self._tracking_uri

    def register_model(
        self, path: str | os.PathLike, name: str | None = None, *, type: str = "custom_model", **fields: Any
    ):
        """Register the file or folder at ``path`` (or an ``azureml://``/``runs:/`` URI) as a model version."""
        from azure.ai.ml.entities import Model

        text = str(path)
        remote = text.startswith(("azureml://", "runs:/"))
        source = text if remote else str(self.path(path, "model path", "aml_register_model"))
        default = Path(text.rstrip("/")).name if "://" not in text else "model"
        model_name = self.name("model", name, default or "model")
        try:
            return self.client.models.create_or_update(Model(name=model_name, path=source, type=type, **fields))
        except Exception as exc:
            raise AmlTestFailure(
                f"aml_register_model: model '{model_name}' from '{text}' was refused: {one_line(exc)}"
            ) from None

    def compute(
        self,
        name: str | None = None,
        *,
        min_instances: int = 0,
        max_instances: int = 2,
        size: str = "Standard_DS3_v2",
        idle_time_before_scale_down: int = 120,
        **fields: Any,
    ):
        """A compute cluster, deleted at teardown."""
        from azure.ai.ml.entities import AmlCompute

        compute_name = self.name("compute", name, "cpu")
        cluster = AmlCompute(
            name=compute_name,
            size=size,
            min_instances=min_instances,
            max_instances=max_instances,
            idle_time_before_scale_down=idle_time_before_scale_down,
            **fields,
        )
        self.on_teardown(
            f"compute cluster {compute_name}", lambda: self.wait(self.client.compute.begin_delete(compute_name))
        )
        try:
            return self.client.compute.begin_create_or_update(cluster).result()
        except Exception as exc:
            raise AmlTestFailure(f"aml_compute: cluster '{compute_name}' was refused: {one_line(exc)}") from None

    def wait(self, poller: Any) -> None:
        """Wait for a deletion locally (it is immediate); on Azure starting it is enough (it takes minutes, and an
        interrupted run must not wait for it)."""
        if self.is_local and poller is not None:
            poller.result()
