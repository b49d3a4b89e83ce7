"""The contract suite's endpoints (emulator/testing/contract/test_endpoints.py), collected by `./run test`."""

from emulator.testing.contract.test_endpoints import *  # noqa: F403
