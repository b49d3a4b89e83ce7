"""What needs no engine in building environment images: reading FROM, standing in for it, the cache key."""

from __future__ import annotations

import importlib.util

import pytest

from emulator.errors import EmulatorError
from emulator.runtime import images
from emulator.runtime.images import context_key, dockerfile_bases, stand_in_dockerfile

MULTI_STAGE = """\
# syntax=docker/dockerfile:1
ARG PY=3.11
ARG REGISTRY
FROM --platform=linux/amd64 python:${PY}-slim AS builder
ARG PY=3.12
RUN echo build
FROM builder AS test
FROM scratch
from $REGISTRY/tools:1 as tools
FROM python:${PY}-slim
COPY --from=builder /x /x
"""


def test_bases_expand_global_args_and_skip_stages_and_scratch():
    assert dockerfile_bases(MULTI_STAGE) == ["python:3.11-slim", "$REGISTRY/tools:1"]
    assert dockerfile_bases("FROM ubuntu\n") == ["ubuntu"]
    assert dockerfile_bases("RUN echo no FROM here\n") == []


def test_stand_in_replaces_only_the_missing_images_line_for_line():
    out = stand_in_dockerfile(MULTI_STAGE, ["python:3.11-slim"], "local/base:1").splitlines()
    original = MULTI_STAGE.splitlines()
    assert len(out) == len(original), "line numbers in build errors must match the user's Dockerfile"
    assert out[3] == "FROM local/base:1 AS builder"
    assert out[9] == "FROM local/base:1"
    assert out[6] == original[6] and out[8] == original[8] and out[7] == "FROM scratch"


def test_context_key_follows_files_dockerignore_and_dockerfile_path(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (tmp_path / "app.py").write_text("print(1)\n")
    (tmp_path / ".dockerignore").write_text("# data is not sent\ndata/\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.csv").write_text("a,b\n")
    key = context_key(tmp_path, "Dockerfile")
    assert context_key(tmp_path, "Dockerfile") == key
    (tmp_path / "data" / "big.csv").write_text("a,b\n1,2\n")
    assert context_key(tmp_path, "Dockerfile") == key, "ignored files do not change the image"
    (tmp_path / "app.py").write_text("print(2)\n")
    changed = context_key(tmp_path, "Dockerfile")
    assert changed != key
    (tmp_path / "other.Dockerfile").write_text("FROM python:3.11-slim\n")
    assert context_key(tmp_path, "other.Dockerfile") != context_key(tmp_path, "Dockerfile")


def test_an_image_build_without_pip_says_how_to_get_it(monkeypatch):
    """A virtualenv made by uv has no pip; the image's wheels are downloaded with pip, so the build stops at once
    with the fix instead of pip's 'No module named pip' under a download error."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pip" else real(name, *a))
    with pytest.raises(EmulatorError) as err:
        images._require_pip()
    assert "needs pip" in err.value.message and "-m ensurepip" in err.value.message
    assert err.value.code == "EnvironmentBuildFailed"
    monkeypatch.undo()
    images._require_pip()  # this test's own Python has pip
