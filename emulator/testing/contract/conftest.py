"""The contract suite's fixtures and backend parametrization (:mod:`emulator.testing.contract.fixtures`)."""

from emulator.testing.contract.fixtures import *  # noqa: F403
