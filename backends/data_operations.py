"""``ml_client.data`` and ``ml_client.datastores`` on the local backend: azure-ai-ml entities in, the
engine's data assets and datastores (:mod:`emulator.data`) underneath.

Built by :class:`backends.local.LocalBackend` on first use (this module imports azure-ai-ml).
Registering or removing a datastore is not emulated (:func:`emulator.data.datastores.not_emulated`
says why and what to do instead); nor are the data operations that need a registry or a mount.
"""

from __future__ import annotations

from typing import Any

from azure.ai.ml.constants import ListViewType

from backends import base, data_entities
from backends.local_operations import _Operations, sdk_errors
from emulator import errors
from emulator.data import assets, datastores


def _view_type(list_view_type: Any) -> str:
    """``ListViewType`` (or its text) as the engine's view type."""
    return str(getattr(list_view_type, "value", list_view_type) or ListViewType.ACTIVE_ONLY.value)


class LocalDataOperations(_Operations, base.DataOperations):
    """``ml_client.data``: data versions, uploads to the default datastore, archive and restore."""

    @sdk_errors
    def create_or_update(self, data: Any) -> Any:
        spec, base_path = data_entities.data_to_spec(data)
        return data_entities.record_to_data(self._store, assets.create_or_update(self._store, spec, base_path))

    @sdk_errors
    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any:
        if not version and not label:  # the SDK's own rule: no implicit latest
            raise errors.ValidationError("Must provide either version or label (label='latest' for the newest).")
        return data_entities.record_to_data(self._store, assets.get(self._store, name, version, label))

    @sdk_errors
    def list(self, name: str | None = None, *, list_view_type: Any = ListViewType.ACTIVE_ONLY) -> list[Any]:
        view_type = _view_type(list_view_type)
        if name:
            return [
                data_entities.record_to_data(self._store, r) for r in assets.list_versions(self._store, name, view_type)
            ]
        return [data_entities.entry_to_data(self._store, e) for e in assets.list_assets(self._store, view_type)]

    @sdk_errors
    def archive(self, name: str, version: str | None = None, label: str | None = None, **kwargs) -> None:
        assets.set_archived(self._store, name, True, version, label)

    @sdk_errors
    def restore(self, name: str, version: str | None = None, label: str | None = None, **kwargs) -> None:
        assets.set_archived(self._store, name, False, version, label)

    def import_data(self, *args: Any, **kwargs: Any) -> Any:
        raise errors.NotEmulated("ml_client.data.import_data", "Register a local copy with create_or_update.")

    def mount(self, *args: Any, **kwargs: Any) -> Any:
        raise errors.NotEmulated(
            "ml_client.data.mount", "The data is a local folder already: `amlemu data show` gives its local_path."
        )

    def share(self, *args: Any, **kwargs: Any) -> Any:
        raise errors.NotEmulated("ml_client.data.share (registries)")


class LocalDatastoreOperations(_Operations, base.DatastoreOperations):
    """``ml_client.datastores``: the workspace's default datastores, each a folder in the workspace."""

    @sdk_errors
    def get(self, name: str, *, include_secrets: bool = False) -> Any:
        return data_entities.record_to_datastore(self._store, datastores.get(self._store, name))

    @sdk_errors
    def list(self, *, include_secrets: bool = False) -> list[Any]:
        return [data_entities.record_to_datastore(self._store, d) for d in datastores.list_datastores(self._store)]

    @sdk_errors
    def get_default(self, *, include_secrets: bool = False) -> Any:
        return data_entities.record_to_datastore(self._store, datastores.default(self._store))

    def create_or_update(self, datastore: Any) -> Any:
        raise datastores.not_emulated("ml_client.datastores.create_or_update")

    def delete(self, name: str) -> None:
        raise datastores.not_emulated("ml_client.datastores.delete")

    def mount(self, *args: Any, **kwargs: Any) -> Any:
        raise errors.NotEmulated(
            "ml_client.datastores.mount", "A datastore is a local folder already: `amlemu datastore show` gives it."
        )
