"""The real ``MLClient`` pointed at a real ``amlemu serve`` (``front_door``/``front_env`` are in tests/conftest.py).

Each test gets its own workspace name, so tests share nothing but the server. The SDK is
configured only through the variables ``amlemu env`` prints.
"""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def workspace_name() -> str:
    return f"ws-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sdk(front_env, workspace_name):
    """The real ``MLClient(DefaultAzureCredential(), ...)``, as Azure's documentation builds it."""
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    return MLClient(DefaultAzureCredential(), "00000000-1111-2222-3333-444444444444", "my-rg", workspace_name)
