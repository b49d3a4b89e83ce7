"""The contract suite runs against the backend named by ``--backend`` (default: local).

``--backend azure`` runs the same tests against a real workspace (config.json and
credentials required); on this machine only the local backend can run.
"""

import pytest


@pytest.fixture
def ml_client(request, amlemu_home):
    from backends import connect

    return connect(request.config.getoption("--backend"))
