"""The contract suite: the azure-ai-ml calls amlemu promises to answer as Azure ML does, one file per operation group.

It ships with amlemu so that anyone can run it against their own workspace and see where amlemu differs
from their Azure::

    amlemu contract                                  # the local backend, then the Azure backend through amlemu serve
    amlemu contract --backend azure --workspace-config config.json    # a real workspace
    pytest --pyargs emulator.testing.contract [--aml-backend azure --aml-workspace-config config.json]

Each test takes an ``ml_client`` (:mod:`emulator.testing.contract.fixtures`) and does what Azure's
documentation does with it. The files it needs (the iris training script, data, scoring script and job YAML,
copies of ``sample_models/iris``) are under :data:`IRIS`.
"""

from __future__ import annotations

from pathlib import Path

#: the iris sample, packaged: src/train.py, data/iris.csv, score/score.py, job.yml, sample-request.json
IRIS = Path(__file__).resolve().parent / "data" / "iris"
#: the curated environment every job of the suite runs in (Azure has it in every region)
CURATED = "AzureML-sklearn-1.5@latest"
#: the pytest configuration ``amlemu contract`` runs with (the suite's own, not the project's it is run from)
INI = Path(__file__).resolve().parent / "contract.ini"
