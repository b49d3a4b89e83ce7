"""The contract suite's pipelines (emulator/testing/contract/test_pipelines.py), collected by `./run test`."""

from emulator.testing.contract.test_pipelines import *  # noqa: F403
