"""The contract suite's jobs (emulator/testing/contract/test_jobs.py), collected by `./run test`."""

from emulator.testing.contract.test_jobs import *  # noqa: F403
