"""The contract suite runs against every backend: the same tests, the same SDK calls.

By default each test runs twice:

- ``local``: ``connect("local")``, the emulator in this process;
- ``azure-front-door``: ``connect("azure")``, the unmodified Azure backend (the real
  ``MLClient`` with ``DefaultAzureCredential``) against a real ``amlemu serve``, configured only
  through the variables ``amlemu env`` prints and a workspace ``config.json``, as a user would.

``--backend azure`` runs the suite once against the real workspace in ``config.json``
(credentials required); ``--backend <plugin>`` against another registered backend.
"""

from __future__ import annotations

import json
import uuid

import pytest


def pytest_generate_tests(metafunc):
    if "contract_backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--backend")
        params = ["local", "azure-front-door"] if chosen == "local" else [chosen]
        metafunc.parametrize("contract_backend", params)


@pytest.fixture
def ml_client(request, contract_backend, amlemu_home, tmp_path, monkeypatch):
    from backends import connect

    if contract_backend != "azure-front-door":
        return connect(contract_backend)
    request.getfixturevalue("front_env")  # eval "$(amlemu env)"
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "subscription_id": "00000000-1111-2222-3333-444444444444",
                "resource_group": "contract-rg",
                "workspace_name": f"contract-{uuid.uuid4().hex[:8]}",
            }
        )
    )
    return connect("azure", path=str(config))
