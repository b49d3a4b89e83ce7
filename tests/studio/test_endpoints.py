"""The Endpoints area in a browser: the iris model behind an online endpoint (the built-in ONNX scorer), its
traffic split, the Test tab's answer, keys hidden until revealed, the Postman download and the logs."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest
from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint, Model

from emulator.endpoints import service

pytestmark = pytest.mark.browser

ROWS = {"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.1, 4.7, 1.5], [7.7, 3.0, 6.1, 2.3]]}


@pytest.fixture(scope="module")
def endpoint(workspace, iris_model):
    """Endpoint ``studio-ep`` (key auth): deployments blue and green of the iris ONNX model, 80/20."""
    model = workspace.models.create_or_update(Model(name="iris", path=str(iris_model), type="custom_model"))
    endpoint = ManagedOnlineEndpoint(name="studio-ep", auth_mode="key")
    workspace.online_endpoints.begin_create_or_update(endpoint).result()
    for name in ("blue", "green"):
        deployment = ManagedOnlineDeployment(name=name, endpoint_name="studio-ep", model=model, instance_count=1)
        workspace.online_deployments.begin_create_or_update(deployment).result()
    endpoint.traffic = {"blue": 80, "green": 20}
    workspace.online_endpoints.begin_create_or_update(endpoint).result()
    keys = workspace.online_endpoints.get_keys("studio-ep")
    return {"name": "studio-ep", "primary": keys.primary_key, "secondary": keys.secondary_key}


def test_the_endpoint_list_and_traffic_split(endpoint, studio_page):
    page = studio_page.open("/endpoints")
    assert page.inner_text('tr[data-endpoint="studio-ep"]').count("Succeeded") == 1
    studio_page.shot("endpoint-list")
    page.click('a:text("studio-ep")')
    segments = page.eval_on_selector_all(
        "#traffic-bar span", "spans => spans.map(s => [s.dataset.deployment, Number(s.dataset.percent)])"
    )
    assert segments == [["blue", 80], ["green", 20]]
    for name in ("blue", "green"):
        row = page.query_selector(f'#deployments tr[data-deployment="{name}"]')
        assert "Succeeded" in row.inner_text()
        assert row.query_selector_all('.replica[data-ready="true"]'), f"{name} shows no ready replica"
    studio_page.shot("endpoint-details")


def test_the_test_tab_returns_the_models_answer(workspace, endpoint, studio_page):
    status, _, expected = service.invoke(workspace.store, "studio-ep", json.dumps(ROWS).encode(), "blue")
    assert status == 200
    page = studio_page.open("/endpoints/studio-ep#test")
    assert json.loads(page.input_value("#test-body"))  # prefilled with a JSON request (from the swagger)
    page.fill("#test-body", json.dumps(ROWS))
    page.select_option("#test-deployment", "blue")
    page.click("#test-send")
    page.wait_for_selector("#test-result:not([hidden])")
    assert page.inner_text("#test-status") == "200"
    assert json.loads(page.inner_text("#test-answer")) == json.loads(expected)
    assert page.inner_text("#test-served-by") == "blue"
    assert page.inner_text("#test-latency").endswith(" ms")
    studio_page.shot("endpoint-test")


def test_keys_are_hidden_until_revealed(endpoint, studio_page):
    page = studio_page.open("/endpoints/studio-ep#consume")
    html = page.content()
    assert endpoint["primary"] not in html and endpoint["secondary"] not in html
    for snippet in ("#snippet-curl", "#snippet-python", "#snippet-csharp"):
        assert "ENDPOINT_KEY" in page.inner_text(snippet) and "127.0.0.1" in page.inner_text(snippet)
    studio_page.shot("endpoint-consume-hidden")
    page.click("#reveal-keys")
    page.wait_for_function(f"document.getElementById('primary-key').textContent === {json.dumps(endpoint['primary'])}")
    assert page.inner_text("#secondary-key") == endpoint["secondary"]
    with page.expect_download() as download:
        page.click("#postman-download")
    collection = json.loads(Path(download.value.path()).read_text())
    variables = {v["key"]: v["value"] for v in collection["variable"]}
    assert variables["endpoint_key"] == endpoint["primary"]
    assert variables["scoring_uri"] == page.inner_text("#scoring-uri")


def test_keys_and_test_requests_need_the_pages_csrf_token(endpoint, studio):
    for path, body in (("/endpoints/studio-ep/keys", b"{}"), ("/endpoints/studio-ep/test", json.dumps({"body": "{}"}))):
        conn = http.client.HTTPConnection("127.0.0.1", studio.port, timeout=30)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = response.read().decode()
        finally:
            conn.close()
        assert response.status == 403, path
        assert endpoint["primary"] not in answer


def test_deployment_logs(endpoint, studio_page):
    page = studio_page.open("/endpoints/studio-ep#logs")
    page.click('button:text("Deployment events") >> nth=0')
    page.wait_for_selector("#logs-1:not([hidden])")
    assert "blue" in page.inner_text("#logs-1")
    studio_page.shot("endpoint-logs")
