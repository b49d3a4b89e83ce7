"""The contract suite's AutoML jobs (emulator/testing/contract/test_automl.py), collected by `./run test`."""

from emulator.testing.contract.test_automl import *  # noqa: F403
