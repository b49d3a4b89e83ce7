"""``./run test`` runs the packaged contract suite (:mod:`emulator.testing.contract`) from here, twice by default.

Each ``test_<group>.py`` here takes the tests of the package's file of the same name, so node ids, ``-k`` and the
xdist groups (one per file) stay as they were. The suite's fixtures come from the package; two of them are
the session's own here: the one ``amlemu serve`` and the iris model the rest of ``tests/`` shares.
"""

from __future__ import annotations

import pytest

from emulator.testing.contract.fixtures import *  # noqa: F403


@pytest.fixture(scope="session")
def contract_front_door(front_door):
    """The session's ``amlemu serve`` (tests/conftest.py), shared with tests/frontdoor."""
    return front_door


@pytest.fixture(scope="session")
def contract_iris_model(iris_model):
    """The iris model tests/conftest.py trains once per session."""
    return iris_model
