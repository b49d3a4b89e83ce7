"""``aml_deploy``: a managed online endpoint with one deployment taking all its traffic, and a handle to call it.

The handle speaks to the endpoint as a client would: real HTTP to its scoring URI with its key (not through
``online_endpoints.invoke``), so a test sees the status codes and bodies its own clients will see. The
endpoint is registered for deletion before it is created, so teardown removes it even when creating the
deployment fails; a deployment that does not start (an ``init()`` that raises, a model the scorer cannot
load) fails the test with the replica's log and deletes the endpoint at once.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from emulator.testing.workspace import AmlTestFailure, ScopedWorkspace, one_line

#: the image Azure ML's examples put under a conda file (Azure needs one; amlemu builds the conda file alone)
CONDA_BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest"


class DeployedEndpoint:
    """An endpoint with its deployment: ``scoring_uri``, ``key``, ``invoke(payload)``, ``logs()``."""

    def __init__(self, ws: ScopedWorkspace, name: str, deployment: str, scoring_uri: str, key: str | None):
        self._ws = ws
        self.name, self.deployment_name, self.scoring_uri, self.key = name, deployment, scoring_uri, key

    def invoke(
        self, payload: Any, *, deployment: str | None = None, headers: dict[str, str] | None = None, timeout=60.0
    ) -> tuple[int, Any]:
        """POST ``payload`` (JSON-encoded unless bytes or str) to the scoring URI with the key; returns
        ``(status, body)``, the body parsed as JSON when it is JSON, else text. An error status is returned,
        not raised: a test asserts on it."""
        body = payload if isinstance(payload, bytes) else payload.encode() if isinstance(payload, str) else None
        if body is None:
            body = json.dumps(payload).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        if self.key:
            sent["Authorization"] = f"Bearer {self.key}"
        if deployment:
            sent["azureml-model-deployment"] = deployment
        request = urllib.request.Request(self.scoring_uri, data=body, headers=sent, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def logs(self, lines: int = 200) -> str:
        """The deployment's log (``online_deployments.get_logs``)."""
        return self._ws.client.online_deployments.get_logs(
            name=self.deployment_name, endpoint_name=self.name, lines=lines
        )

    def __repr__(self) -> str:
        return f"DeployedEndpoint(name={self.name!r}, deployment={self.deployment_name!r}, uri={self.scoring_uri!r})"


def _model(ws: ScopedWorkspace, model: Any, endpoint: str) -> Any:
    """A registered model, an ``azureml:`` reference, or a local path registered for this endpoint."""
    if model is None or not isinstance(model, (str, os.PathLike)) or str(model).startswith("azureml:"):
        return model
    return ws.register_model(model, name=f"{endpoint}-model" if ws.is_local else "model")


def _environment(ws: ScopedWorkspace, environment: Any) -> Any:
    """An Environment entity, a conda file, a Docker build folder, or an ``azureml:``/curated name as given."""
    if environment is None or not isinstance(environment, (str, os.PathLike)):
        return environment
    text = str(environment)
    if text.startswith("azureml:") or not text.endswith((".yml", ".yaml")) and not Path(text).is_dir():
        return text if text.startswith("azureml:") or "/" in text else f"azureml:{text}"
    from azure.ai.ml.entities import BuildContext, Environment

    path = ws.path(environment, "environment", "aml_deploy")
    if path.is_dir():
        return Environment(build=BuildContext(path=str(path)))
    return Environment(conda_file=str(path), image=CONDA_BASE_IMAGE)


def deploy(
    ws: ScopedWorkspace,
    *,
    model: Any = None,
    code: str | os.PathLike | None = None,
    scoring_script: str | None = None,
    environment: Any = None,
    instance_count: int = 1,
    instance_type: str = "Standard_DS3_v2",
    endpoint_name: str | None = None,
    deployment_name: str = "blue",
    auth_mode: str = "key",
    **deployment_fields: Any,
) -> DeployedEndpoint:
    """Create a managed online endpoint and one deployment with 100 % of its traffic; delete both at teardown."""
    from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment, ManagedOnlineEndpoint

    if scoring_script and not code:
        script = ws.path(scoring_script, "scoring script", "aml_deploy")
        code, scoring_script = script.parent, script.name
    if code and not scoring_script:
        raise AmlTestFailure(
            "aml_deploy: code= was given without scoring_script=. Fix: name the script in the code folder "
            "(scoring_script='score.py'), or leave both out for a model the built-in scorer serves (ONNX, MLflow)."
        )
    configuration = None
    if code:
        folder = ws.path(code, "code folder", "aml_deploy")
        if not (folder / scoring_script).is_file():
            raise AmlTestFailure(
                f"aml_deploy: the scoring script '{scoring_script}' is not in the code folder {folder}. Fix "
                "scoring_script= (a path relative to code=)."
            )
        configuration = CodeConfiguration(code=str(folder), scoring_script=scoring_script)
    name = ws.name("online_endpoint", endpoint_name, "ep")
    model_entity = _model(ws, model, name)
    env = _environment(ws, environment)
    client = ws.client
    endpoint = ManagedOnlineEndpoint(name=name, auth_mode=auth_mode)
    cleanup = ws.on_teardown(f"endpoint {name}", lambda: ws.wait(client.online_endpoints.begin_delete(name=name)))
    try:
        client.online_endpoints.begin_create_or_update(endpoint).result()
    except Exception as exc:
        raise AmlTestFailure(f"aml_deploy: endpoint '{name}' was refused: {one_line(exc)}") from None
    deployment = ManagedOnlineDeployment(
        name=deployment_name,
        endpoint_name=name,
        model=model_entity,
        code_configuration=configuration,
        environment=env,
        instance_type=instance_type,
        instance_count=instance_count,
        **deployment_fields,
    )
    try:
        client.online_deployments.begin_create_or_update(deployment).result()
    except Exception as exc:
        try:
            ws.delete_now(cleanup)
        except Exception:  # the test fails with the deployment's error; the leak check reports what remains
            pass
        where = f"{configuration.code}/{configuration.scoring_script}" if configuration else "the model"
        raise AmlTestFailure(
            f"aml_deploy: deployment '{deployment_name}' of endpoint '{name}' did not start: {exc}\n"
            f"Fix the cause named above in {where} or its environment (an init() that raises, a package the "
            "environment lacks, a model the scorer cannot load; on the docker runtime, an engine that does not "
            "answer); the endpoint was deleted, nothing of it runs."
        ) from None
    endpoint.traffic = {deployment_name: 100}
    created = client.online_endpoints.begin_create_or_update(endpoint).result()
    key = client.online_endpoints.get_keys(name)
    handle = DeployedEndpoint(
        ws,
        name,
        deployment_name,
        created.scoring_uri or client.online_endpoints.get(name).scoring_uri,
        getattr(key, "primary_key", None) or getattr(key, "access_token", None),
    )
    cleanup.where = f"{handle.scoring_uri} (deployment {deployment_name})"
    return handle
