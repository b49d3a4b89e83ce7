"""Runtimes: where a job's (and later a deployment's) processes run."""

from emulator.runtime.base import Runtime, RunHandle, RunRequest, get_runtime

__all__ = ["Runtime", "RunHandle", "RunRequest", "get_runtime"]
