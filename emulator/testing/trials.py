"""Trial scripts for sweep tests and benchmarks.

``SLEEPER`` (``python sleeper.py <seconds> [anything ...]``) sleeps, then appends
``accuracy = 1 / (1 + seconds)`` to its MLflow run's metric file the way ``mlflow.log_metric``
writes it, without importing MLflow (about 1.5 s of CPU on a small machine, which would measure
MLflow's import rather than the sweep). Extra arguments are ignored: a test puts a marker there to
find the trial's processes, a benchmark a sampled value to make each trial distinct.
"""

SLEEPER = '''\
"""A trial without MLflow's import: sleeps argv[1] s, then appends accuracy = 1 / (1 + s) to its run."""
import os, sys, time
from urllib.parse import unquote, urlparse
time.sleep(float(sys.argv[1]))
run = os.path.join(unquote(urlparse(os.environ["MLFLOW_TRACKING_URI"]).path), os.environ["MLFLOW_EXPERIMENT_ID"],
                   os.environ["MLFLOW_RUN_ID"])
with open(os.path.join(run, "metrics", "accuracy"), "a") as f:
    f.write(f"{int(time.time() * 1000)} {1 / (1 + float(sys.argv[1]))} 0\\n")
'''
