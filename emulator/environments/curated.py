"""Azure ML's curated environments and what amlemu runs in their place.

``None`` as the requirement list means the emulator's own interpreter already
satisfies the environment (scikit-learn, MLflow, ONNX tooling ship with amlemu);
a list means a cached virtualenv with those packages.
"""

from __future__ import annotations

import re

# curated name (as the registry spells it, without the ``AzureML-`` prefix) -> pip requirements
CURATED: dict[str, list[str] | None] = {
    "sklearn-1.5": None,
    "sklearn-1.1": None,
    "sklearn-1.0": None,
    "sklearn-1.0-ubuntu20.04-py38-cpu": None,
    "sklearn-1.1-ubuntu20.04-py38-cpu": None,
    "minimal-ubuntu22.04-py39-cpu-inference": None,
    "minimal-ubuntu20.04-py38-cpu-inference": None,
    "minimal-py312-inference": None,
    "mlflow-ubuntu20.04-py38-cpu-inference": None,
    "ai-ml-automl": None,
    "lightgbm-3.3": ["lightgbm", "scikit-learn", "mlflow-skinny", "pandas"],
    "ACPT-pytorch-2.2-cuda12.1": ["torch==2.13.0", "mlflow-skinny"],
    "pytorch-2.2-cuda12.1": ["torch==2.13.0", "mlflow-skinny"],
    "tensorflow-2.16-cuda12": ["tensorflow-cpu", "mlflow-skinny"],
}

_REGISTRY_REF = re.compile(
    r"^azureml://registries/(?P<registry>[^/]+)/environments/(?P<name>[^/]+)"
    r"(?:/versions/(?P<version>[^/]+)|/labels/(?P<label>[^/]+))?/?$"
)


class EnvironmentRef:
    """A parsed environment reference: ``[azureml:]name[:version|@label]`` or a registry URI."""

    def __init__(self, name: str, version: str | None = None, label: str | None = None, registry: str | None = None):
        self.name, self.version, self.label, self.registry = name, version, label, registry

    @classmethod
    def parse(cls, text: str) -> EnvironmentRef:
        text = text.strip()
        match = _REGISTRY_REF.match(text)
        if match:
            return cls(match["name"], match["version"], match["label"], match["registry"])
        if text.startswith("azureml:"):
            text = text[len("azureml:") :]
        if "@" in text:
            name, label = text.split("@", 1)
            return cls(name, label=label)
        if ":" in text:
            name, version = text.split(":", 1)
            return cls(name, version=version)
        return cls(text)

    @property
    def curated_key(self) -> str | None:
        """The key into :data:`CURATED`, if this names a curated environment."""
        if self.registry:
            name = self.name
        elif self.name.startswith("AzureML-"):
            name = self.name[len("AzureML-") :]
        else:
            return None
        return name if name in CURATED else None

    def __str__(self) -> str:
        if self.registry:
            tail = f"/versions/{self.version}" if self.version else f"/labels/{self.label or 'latest'}"
            return f"azureml://registries/{self.registry}/environments/{self.name}{tail}"
        return self.name + (f":{self.version}" if self.version else f"@{self.label}" if self.label else "")


def curated_names() -> list[str]:
    return [f"AzureML-{name}" for name in CURATED]
