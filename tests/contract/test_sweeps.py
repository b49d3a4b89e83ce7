"""The contract suite's sweeps (emulator/testing/contract/test_sweeps.py), collected by `./run test`."""

from emulator.testing.contract.test_sweeps import *  # noqa: F403
