"""The Azure backend is the real MLClient, built from config.json; no request leaves the process.

Requests go through azure-core's own ``RequestsTransport`` (handed to ``MLClient``
as ``transport=``, which it forwards to every operation group's pipeline) with a
requests adapter that answers canned JSON instead of opening a connection.
"""

from __future__ import annotations

import io
import json
import socket
import time

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ResourceNotFoundError
from azure.core.pipeline.transport import RequestsTransport

import backends
from backends.azure import AzureBackend

SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
JOB_PATH = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/"
    "Microsoft.MachineLearningServices/workspaces/ws/jobs/my-job"
)
NOT_FOUND = {"error": {"code": "UserError", "message": "Job my-job not found"}}
COMMAND_JOB = {
    "id": JOB_PATH,
    "name": "my-job",
    "type": "Microsoft.MachineLearningServices/workspaces/jobs",
    "properties": {
        "jobType": "Command",
        "command": "python train.py",
        "status": "Completed",
        "environmentId": "azureml:AzureML-sklearn-1.5:1",
        "experimentName": "exp",
    },
}


class FakeCredential:
    def __init__(self):
        self.scopes = []

    def get_token(self, *scopes, **kwargs):
        self.scopes.extend(scopes)
        return AccessToken("fake", int(time.time()) + 10 * 365 * 24 * 3600)


class CannedAdapter(requests.adapters.BaseAdapter):
    """Answers every request with one JSON body instead of connecting."""

    def __init__(self, status: int, body: dict):
        super().__init__()
        self.status, self.body = status, body

    def send(self, request, **kwargs):
        response = requests.Response()
        response.status_code, response.request, response.url = self.status, request, request.url
        response.headers["Content-Type"] = "application/json"
        response.raw = io.BytesIO(json.dumps(self.body).encode())
        return response

    def close(self):
        pass


class RecordingTransport(RequestsTransport):
    """azure-core's transport over a session that never touches the network; records each request."""

    def __init__(self, status: int, body: dict):
        session = requests.Session()
        for prefix in ("https://", "http://"):
            session.mount(prefix, CannedAdapter(status, body))
        super().__init__(session=session, session_owner=False)
        self.requests = []

    def send(self, request, **kwargs):
        self.requests.append(request)
        return super().send(request, **kwargs)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a test tried to reach the network: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"subscription_id": SUBSCRIPTION, "resource_group": "rg", "workspace_name": "ws"}))
    return path


def make_backend(config_path, status=404, body=NOT_FOUND):
    transport, credential = RecordingTransport(status, body), FakeCredential()
    return AzureBackend(credential=credential, path=str(config_path), transport=transport), transport, credential


def test_workspace_comes_from_config_json(config_path):
    backend, _, _ = make_backend(config_path)
    assert backend.client.subscription_id == SUBSCRIPTION
    assert backend.client.resource_group_name == "rg"
    assert backend.client.workspace_name == "ws"


def test_operation_groups_are_the_sdk_ones(config_path):
    backend, _, _ = make_backend(config_path)
    assert backend.jobs is backend.client.jobs
    assert backend.models is backend.client.models
    assert backend.workspaces is backend.client.workspaces  # anything else straight from MLClient


def test_jobs_get_sends_authenticated_arm_request(config_path):
    backend, transport, credential = make_backend(config_path)
    with pytest.raises(ResourceNotFoundError):
        backend.jobs.get("my-job")
    assert len(transport.requests) == 1
    request = transport.requests[0]
    assert request.method == "GET"
    assert request.url.startswith("https://management.azure.com" + JOB_PATH + "?")
    assert request.headers["Authorization"] == "Bearer fake"
    assert credential.scopes == ["https://management.azure.com/.default"]


def test_jobs_get_returns_the_sdk_entity(config_path):
    backend, transport, _ = make_backend(config_path, 200, COMMAND_JOB)
    job = backend.jobs.get("my-job")
    assert (job.name, job.status, job.command, job.experiment_name) == ("my-job", "Completed", "python train.py", "exp")
    assert [r.method for r in transport.requests] == ["GET"]


def test_connect_azure_returns_azure_backend(config_path, amlemu_home):
    backend = backends.connect(
        "azure", credential=FakeCredential(), path=str(config_path), transport=RecordingTransport(404, NOT_FOUND)
    )
    assert isinstance(backend, AzureBackend)
    assert backend.client.workspace_name == "ws"


def test_no_config_json_is_amlemus_own_error(tmp_path, monkeypatch):
    from backends.azure import AzureNotConfigured

    monkeypatch.chdir(tmp_path)
    with pytest.raises(AzureNotConfigured) as info:
        AzureBackend(credential=FakeCredential())
    message = info.value.message
    for needed in (
        "We could not find config.json",
        "Azure ML studio",
        "--subscription",
        "az login",
        "AZURE_CLIENT_SECRET",
        "Nothing was run",
        "unset AMLEMU_BACKEND",
    ):
        assert needed in message, needed
    assert info.value.code == "AzureNotConfigured"


def test_a_workspace_named_in_full_needs_no_config_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    backend = AzureBackend(
        credential=FakeCredential(), subscription_id=SUBSCRIPTION, resource_group_name="rg2", workspace_name="ws2"
    )
    assert (backend.client.subscription_id, backend.client.resource_group_name, backend.client.workspace_name) == (
        SUBSCRIPTION,
        "rg2",
        "ws2",
    )


def test_a_workspace_flag_overrides_config_json(config_path):
    backend = AzureBackend(
        credential=FakeCredential(),
        path=str(config_path),
        workspace_name="other",
        transport=RecordingTransport(404, NOT_FOUND),
    )
    assert (backend.client.resource_group_name, backend.client.workspace_name) == ("rg", "other")


def test_the_azure_backend_verbs_are_the_sdk_verbs(config_path):
    from backends.sdk_verbs import SdkVerbs

    backend, _, _ = make_backend(config_path)
    assert isinstance(backend.verbs, SdkVerbs) and backend.verbs.backend_name == "azure"
