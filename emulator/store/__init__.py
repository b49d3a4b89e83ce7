"""The workspace store: SQLite (WAL) for records, folders for artifacts."""

from emulator.store.db import WorkspaceStore, open_store

__all__ = ["WorkspaceStore", "open_store"]
