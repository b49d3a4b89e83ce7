"""What clients read before they call Azure ML: the cloud metadata, managed-identity tokens, discovery.

``ARM_CLOUD_METADATA_URL`` makes azure-ai-ml (and ``az``) read this cloud's endpoints from
here; ``AZUREML_CURRENT_CLOUD`` picks it by name. Both are fetched without a token, over
plain HTTP.
"""

from __future__ import annotations

from flask import Blueprint, request

from emulator.frontdoor import resources, settings, tokens

blueprint = Blueprint("cloud", __name__)


def metadata(front: settings.FrontDoor) -> dict:
    """One cloud, in ARM's ``/metadata/endpoints`` shape (api-version 2019-05-01 and later)."""
    return {
        "name": settings.CLOUD_NAME,
        "portal": "https://portal.azure.com",  # the SDK derives Azure ML's resource id (https://ml.azure.com) from it
        "resourceManager": front.resource_manager,
        "authentication": {
            "loginEndpoint": f"{front.http_url}/login/",
            "audiences": [front.resource_manager],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "media": front.resource_manager,
        "graphAudience": front.resource_manager,
        "graph": front.resource_manager,
        "activeDirectoryDataLake": front.resource_manager,
        "batch": front.resource_manager,
        "gallery": front.resource_manager,
        "sqlManagement": front.resource_manager,
        "microsoftGraphResourceId": front.resource_manager,
        "appInsightsResourceId": front.resource_manager,
        "appInsightsTelemetryChannelResourceId": front.resource_manager,
        "attestationResourceId": front.resource_manager,
        "synapseAnalyticsResourceId": front.resource_manager,
        "logAnalyticsResourceId": front.resource_manager,
        "ossrDbmsResourceId": front.resource_manager,
        "suffixes": {
            "storage": settings.STORAGE_SUFFIX,
            "keyVaultDns": f"vault.{settings.STORAGE_SUFFIX}",
            "acrLoginServer": f"azurecr.{settings.STORAGE_SUFFIX}",
            "sqlServerHostname": f"database.{settings.STORAGE_SUFFIX}",
            "azureDatalakeStoreFileSystem": f"dls.{settings.STORAGE_SUFFIX}",
            "azureDatalakeAnalyticsCatalogAndJob": f"dla.{settings.STORAGE_SUFFIX}",
        },
    }


@blueprint.get("/metadata/endpoints")
def endpoints():
    # api-version 2019-05-01 and later answer a list of clouds; older ones a single cloud
    front = resources.front()
    version = request.args.get("api-version", "")
    return resources.answer([metadata(front)] if version >= "2019-05-01" else metadata(front))


@blueprint.get("/msi/token")
@blueprint.get("/msi/token/")
def token():
    """Managed identity: App Service's protocol (``X-IDENTITY-HEADER``) and Azure ML compute's (``secret``)."""
    given = request.headers.get("X-IDENTITY-HEADER") or request.headers.get("secret")
    if not tokens.identity_header_ok(given):
        return resources.arm_error(
            "InvalidIdentityHeader",
            "The managed-identity request lacks the right X-IDENTITY-HEADER (or secret) header: set IDENTITY_HEADER "
            'from `amlemu env` (eval "$(amlemu env)").',
            401,
        )
    resource = request.args.get("resource") or request.args.get("scope") or ""
    if not resource:
        return resources.arm_error("BadRequest", "The token request names no 'resource' query parameter.", 400)
    try:
        return resources.answer(tokens.issue(resource, resources.front()))
    except tokens.TokenRefused as exc:
        return resources.arm_error("InvalidResource", str(exc), 400)


@blueprint.get("/discovery")
def discovery():
    """Where the workspace's data-plane services are (the workspace's ``discoveryUrl``): all here."""
    base = resources.front().https_url
    services = ("api", "catalog", "experimentation", "gallery", "history", "hyperdrive", "labeling", "modelmanagement")
    return resources.answer({**{s: base for s in services}, "pipelines": base, "studio": resources.front().http_url})
