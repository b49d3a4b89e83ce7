"""The contract suite's models (emulator/testing/contract/test_models.py), collected by `./run test`."""

from emulator.testing.contract.test_models import *  # noqa: F403
