"""score.py in its own container, built from the conda file as a docker deployment's image is."""

import pytest

from amlemu.testing import ScoringContainer


@pytest.mark.container
def test_score_py_in_its_container(iris_model, project_dir):
    with ScoringContainer(
        model=iris_model, code="src", scoring_script="score.py", environment="env/conda.yml", base_path=project_dir
    ) as c:
        assert c.score({"data": [[5.1, 3.5, 1.4, 0.2]]}) == [0]
