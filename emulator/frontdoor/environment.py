"""``amlemu env``: the variables that point azure-ai-ml, azure-identity, ``az`` and mlflow at the front door.

Formats: ``bash`` (``export K='v'``, for ``eval``), ``powershell``, ``dotenv`` and
``github`` (``K=v`` lines for ``>> "$GITHUB_ENV"``).
"""

from __future__ import annotations

import shlex

from emulator import errors
from emulator.frontdoor import certificates, settings, tokens
from emulator.frontdoor.settings import FrontDoor

FORMATS = ("bash", "powershell", "dotenv", "github")

#: hosts that must never go through the blob proxy (the front door itself). Not ``localhost``: requests, urllib and
#: curl read a NO_PROXY entry as a domain suffix, and the storage hosts end with ``.localhost`` (STORAGE_SUFFIX)
NO_PROXY = "127.0.0.1,::1"


def variables(front: FrontDoor, certs: certificates.Certificates | None = None) -> dict[str, str]:
    certs = certs or certificates.ensure()
    return {
        # the cloud: azure-ai-ml reads its endpoints from the metadata and picks the cloud by name
        "ARM_CLOUD_METADATA_URL": front.metadata_url,
        "AZUREML_CURRENT_CLOUD": settings.CLOUD_NAME,
        # registries (MLClient(registry_name=...)): their discovery asks here, and is refused as not emulated
        "REGISTRY_DISCOVERY_ENDPOINT_URL": front.resource_manager,
        # credentials: DefaultAzureCredential's managed identity, App Service protocol
        "IDENTITY_ENDPOINT": front.identity_endpoint,
        "IDENTITY_HEADER": tokens.identity_header(),
        "AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential",
        # trust: the control plane is HTTPS with a certificate from amlemu's local CA
        "REQUESTS_CA_BUNDLE": str(certs.bundle),
        "SSL_CERT_FILE": str(certs.bundle),
        # jobs.stream: the SDK sleeps at least this many seconds between polls of a running job (2 by default);
        # run history holds each poll open until the job changes (LONG_POLL_S), so polling again at once is cheap
        "AZUREML_RUN_POLLING_INTERVAL_MIN": "0",
        # storage: datastore transfers go to https://<account>.blob.<suffix>, tunnelled to the blob service
        "HTTPS_PROXY": front.proxy_url,
        "NO_PROXY": NO_PROXY,
    }


def render(values: dict[str, str], fmt: str = "bash") -> str:
    if fmt not in FORMATS:
        raise errors.ValidationError(f"Unknown format '{fmt}' for `amlemu env`: use one of {', '.join(FORMATS)}.")
    if fmt == "bash":
        lines = [f"export {k}={shlex.quote(v)}" for k, v in values.items()]
    elif fmt == "powershell":
        lines = [f"$Env:{k} = '{v.replace(chr(39), chr(39) * 2)}'" for k, v in values.items()]
    else:  # dotenv and GitHub's $GITHUB_ENV: K=v, one per line (no value here holds a newline)
        lines = [f"{k}={v}" for k, v in values.items()]
    return "\n".join(lines) + "\n"
