"""The contract suite's compute (emulator/testing/contract/test_compute.py), collected by `./run test`."""

from emulator.testing.contract.test_compute import *  # noqa: F403
