"""The front door's base: metadata, managed identity, TLS, token checks, ARM errors, `amlemu env`."""

from __future__ import annotations

import json
import os
import stat
import urllib.error
import urllib.request

import pytest
import requests


def test_workspace_through_the_real_sdk(sdk, workspace_name, front_door):
    ws = sdk.workspaces.get(workspace_name)
    assert ws.name == workspace_name
    assert ws.discovery_url == f"https://127.0.0.1:{front_door.port + 1}/discovery"
    assert ws.mlflow_tracking_uri.startswith(f"http://127.0.0.1:{front_door.port}/mlflow/")
    assert ws.id.startswith("/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/my-rg/")


def test_unknown_operation_is_refused_as_not_emulated(sdk, front_env, front_door):
    from azure.identity import DefaultAzureCredential

    token = DefaultAzureCredential().get_token(f"https://127.0.0.1:{front_door.port + 1}/.default").token
    url = (
        f"https://127.0.0.1:{front_door.port + 1}/subscriptions/s/resourceGroups/r/providers/"
        "Microsoft.MachineLearningServices/workspaces/ws-check/featurestoreEntities/x"
    )
    r = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 501
    assert r.json()["error"]["code"] == "NotEmulated" and "featurestoreEntities" in r.json()["error"]["message"]


def _arm_get(front_door, token: str | None):
    url = (
        f"https://127.0.0.1:{front_door.port + 1}/subscriptions/s/resourceGroups/r/providers/"
        "Microsoft.MachineLearningServices/workspaces/ws-check"
    )
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(url, headers=headers, timeout=30, verify=front_door.variables["REQUESTS_CA_BUNDLE"])


def test_control_plane_refuses_missing_forged_and_foreign_tokens(front_door):
    assert _arm_get(front_door, None).status_code == 401
    forged = _arm_get(front_door, "eyJhbGciOiJub25lIn0.eyJhdWQiOiJ4In0.")
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "InvalidAuthenticationToken"
    identity = front_door.variables["IDENTITY_ENDPOINT"]
    header = {"X-IDENTITY-HEADER": front_door.variables["IDENTITY_HEADER"]}
    # a token for a resource the front door does not serve is not issued at all
    r = requests.get(
        identity, params={"resource": "https://vault.azure.net", "api-version": "2019-08-01"}, headers=header
    )
    assert r.status_code == 400 and "vault.azure.net" in r.json()["error"]["message"]
    # a token for storage is a real token, but not for the resource manager's routes... it is accepted (same cloud);
    # one signed with another key is not
    import jwt

    other = jwt.encode(
        {"aud": f"https://127.0.0.1:{front_door.port + 1}/", "exp": 2**31},
        "not-the-key-but-long-enough-for-hs256-0123456789",
        "HS256",
    )
    assert _arm_get(front_door, other).status_code == 401
    good = requests.get(
        identity,
        params={"resource": f"https://127.0.0.1:{front_door.port + 1}/", "api-version": "2019-08-01"},
        headers=header,
    ).json()
    assert set(good) >= {"access_token", "expires_on", "resource", "token_type"}
    assert _arm_get(front_door, good["access_token"]).status_code == 200


def test_identity_endpoint_wants_the_identity_header(front_door):
    identity = front_door.variables["IDENTITY_ENDPOINT"]
    params = {"resource": f"https://127.0.0.1:{front_door.port + 1}/", "api-version": "2019-08-01"}
    assert requests.get(identity, params=params).status_code == 401
    assert requests.get(identity, params=params, headers={"X-IDENTITY-HEADER": "guess"}).status_code == 401
    # Azure ML compute's protocol (MSI_ENDPOINT + MSI_SECRET) answers too
    r = requests.get(identity, params=params, headers={"secret": front_door.variables["IDENTITY_HEADER"]})
    assert r.status_code == 200 and r.json()["token_type"] == "Bearer"


def test_tls_is_from_the_local_ca_and_keys_are_private(front_door):
    url = f"https://127.0.0.1:{front_door.port + 1}/discovery"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, verify=True, timeout=10)  # certifi alone does not know amlemu's CA
    assert requests.get(url, verify=front_door.variables["REQUESTS_CA_BUNDLE"], timeout=10).json()["history"]
    folder = front_door.home / "frontdoor"
    for name in ("ca.key", "server.key", "token-signing-key", "identity-header"):
        assert stat.S_IMODE(os.stat(folder / name).st_mode) == 0o600, name


def test_metadata_lists_the_cloud_without_auth(front_door):
    with urllib.request.urlopen(front_door.variables["ARM_CLOUD_METADATA_URL"], timeout=10) as r:
        clouds = json.load(r)
    (cloud,) = [c for c in clouds if c["name"] == front_door.variables["AZUREML_CURRENT_CLOUD"]]
    assert cloud["resourceManager"] == f"https://127.0.0.1:{front_door.port + 1}/"
    assert cloud["suffixes"]["storage"] and cloud["authentication"]["loginEndpoint"]


def test_secrets_never_reach_the_log(front_door, sdk, workspace_name):
    sdk.workspaces.get(workspace_name)
    log = front_door.log()
    assert front_door.variables["IDENTITY_HEADER"] not in log and "access_token" not in log and "eyJ" not in log


def test_proxy_refuses_anything_but_connect(front_door):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{front_door.port + 2}/x", timeout=10)
    assert err.value.code == 405


@pytest.mark.parametrize("fmt", ["bash", "powershell", "dotenv", "github"])
def test_env_formats(cli, fmt):
    out = cli.run("env", "--format", fmt).stdout
    assert "ARM_CLOUD_METADATA_URL" in out and "IDENTITY_HEADER" in out and "REQUESTS_CA_BUNDLE" in out
    if fmt == "bash":
        assert out.startswith("export ")
    elif fmt == "powershell":
        assert out.startswith("$Env:")
    else:
        assert all("=" in line and not line.startswith("export") for line in out.splitlines())
