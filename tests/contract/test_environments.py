"""The contract suite's environments (emulator/testing/contract/test_environments.py), collected by `./run test`."""

from emulator.testing.contract.test_environments import *  # noqa: F403
