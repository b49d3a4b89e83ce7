"""The swagger document at ``GET /swagger.json`` (``?version=2`` by default, 3 and 3.1).

As in azureml-inference-server-http, a document the user ships in the code folder
(``swagger.json`` or ``swagger2.json``, ``swagger3.json``, ``swagger3.1.json``) wins;
otherwise one is generated from the scorer's ``ServiceInput``/``ServiceOutput``
schemas: inference-schema's for a decorated run(), an empty object schema for an
undecorated one, the model's input signature for the built-in ONNX scorer.
Documents are built once at start-up and served pre-serialised.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from .errors import ScoringError, StartupError
from .settings import ServerSettings

VERSIONS = ("2", "3", "3.1")
ALIASES = {"2": "2", "2.0": "2", "3": "3", "3.0": "3", "3.1": "3.1"}
USER_FILES = {"2": ("swagger.json", "swagger2.json"), "3": ("swagger3.json",), "3.1": ("swagger3.1.json",)}

SchemaSource = Callable[[str], "tuple[dict, dict] | None"]


class SwaggerDocuments:
    """The swagger documents one replica serves, by version."""

    def __init__(self, service_schemas: SchemaSource, settings: ServerSettings, app_root: str | None = None):
        self._documents: dict[str, str] = {}
        for version in VERSIONS:
            document = _user_document(app_root, version) if app_root else None
            if document is None:
                schemas = service_schemas(version)
                document = build_document(version, *schemas, settings) if schemas else None
            if document is not None:
                self._documents[version] = json.dumps(document)

    def get(self, requested: str | None) -> str:
        """The JSON text for ``?version=...``; ScoringError 404 for an unknown or unsupported version."""
        version = requested or "2"
        supported = ", ".join(sorted(self._documents))
        if version not in ALIASES:
            raise ScoringError(
                404,
                "SwaggerVersionNotValid",
                f"Swagger version [{version}] is not valid. Supported versions: [{supported}].",
            )
        document = self._documents.get(ALIASES[version])
        if document is None:
            raise ScoringError(
                404,
                "SwaggerVersionNotSupported",
                f"Swagger version [{version}] is not supported for the scoring script. "
                f"Supported swagger versions: [{supported}].",
            )
        return document


def build_document(version: str, service_input: dict, service_output: dict, settings: ServerSettings) -> dict:
    """A swagger 2.0 or OpenAPI 3.0/3.1 document for the three routes of the scoring server."""
    prefix = f"/{settings.service_path_prefix.strip('/')}" if settings.service_path_prefix.strip("/") else ""
    info = {
        "title": settings.service_name,
        "version": settings.service_version,
        "description": f"API specification for the Azure Machine Learning service {settings.service_name}",
    }
    error = {
        "type": "object",
        "properties": {
            "message": {"type": "string"},
            "error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
        },
    }
    bearer = {"type": "apiKey", "name": "Authorization", "in": "header", "description": "For example: Bearer abc123"}
    version_param = {"name": "version", "in": "query", "required": False}
    version_schema = {"type": "integer", "enum": [2, 3]}
    if version == "2":
        ref = "#/definitions/"
        health_ok = {
            "description": "The service is up: the body is 'Healthy'.",
            "schema": {"type": "string"},
            "examples": {"application/json": "Healthy"},
        }
        score_params = {
            "parameters": [
                {
                    "name": "serviceInputPayload",
                    "in": "body",
                    "schema": {"$ref": ref + "ServiceInput"},
                    "description": "The input payload for the real-time machine learning service.",
                }
            ]
        }
        score_ok = {"description": "The prediction.", "schema": {"$ref": ref + "ServiceOutput"}}
        swagger_params = [{**version_param, **version_schema}]
        swagger_ok = {"description": "The Swagger specification.", "schema": {"type": "string"}}
        default = {
            "description": "The service failed to execute due to an error.",
            "schema": {"$ref": ref + "ErrorResponse"},
        }
    else:
        ref = "#/components/schemas/"
        health_ok = {
            "description": "The service is up: the body is 'Healthy'.",
            "content": {"text/plain": {"schema": {"type": "string", "example": "Healthy"}}},
        }
        score_params = {
            "requestBody": {
                "description": "The input payload for the real-time machine learning service.",
                "content": {"application/json": {"schema": {"$ref": ref + "ServiceInput"}}},
            }
        }
        score_ok = {
            "description": "The prediction.",
            "content": {"application/json": {"schema": {"$ref": ref + "ServiceOutput"}}},
        }
        swagger_params = [{**version_param, "schema": version_schema}]
        swagger_ok = {
            "description": "The Swagger specification.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
        default = {
            "description": "The service failed to execute due to an error.",
            "content": {"application/json": {"schema": {"$ref": ref + "ErrorResponse"}}},
        }
    paths = {
        f"{prefix}/": {
            "get": {
                "operationId": "ServiceHealthCheck",
                "description": "Liveness: 200 'Healthy'.",
                "responses": {"200": health_ok, "default": default},
            }
        },
        f"{prefix}/score": {
            "post": {
                "operationId": "RunMLService",
                "security": [{"Bearer": []}],
                "description": "Run the model and get the prediction.",
                **score_params,
                "responses": {"200": score_ok, "default": default},
            }
        },
        f"{prefix}/swagger.json": {
            "get": {
                "operationId": "GetSwaggerSpec",
                "description": "This document.",
                "parameters": swagger_params,
                "responses": {"200": swagger_ok, "default": default},
            }
        },
    }
    schemas = {"ServiceInput": service_input, "ServiceOutput": service_output, "ErrorResponse": error}
    if version == "2":
        return {
            "swagger": "2.0",
            "info": info,
            "schemes": ["https"],
            "consumes": ["application/json"],
            "produces": ["application/json"],
            "securityDefinitions": {"Bearer": bearer},
            "paths": paths,
            "definitions": schemas,
        }
    return {
        "openapi": "3.1.0" if version == "3.1" else "3.0.3",
        "info": info,
        "security": [{"Bearer": []}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"Bearer": bearer}},
    }


def _user_document(app_root: str, version: str) -> dict | None:
    for name in USER_FILES[version]:
        path = os.path.join(app_root, name)
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    return json.load(f)
            except ValueError as exc:
                raise StartupError(
                    f"{path} is not valid JSON ({exc}): fix it or remove it to have the swagger document generated"
                ) from None
    return None
