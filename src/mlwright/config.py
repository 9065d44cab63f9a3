"""Settings shared by every stage, read from the environment (``MLWRIGHT_*``).

One pydantic-settings object; the server injects it with FastAPI's ``Depends`` so that tests
can override it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """mlwright's settings.

    Attributes
    ----------
    home
        The project folder holding the embedded stores (``.mlwright`` in the working
        directory unless ``MLWRIGHT_HOME`` says otherwise).
    tracking_uri
        MLflow tracking URI; empty means the SQLite store inside ``home``.
    duckdb_memory_limit
        Memory DuckDB may use for scans of large files before it spills to disk.
    """

    model_config = SettingsConfigDict(env_prefix="MLWRIGHT_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.cwd() / ".mlwright")
    tracking_uri: str = ""
    duckdb_memory_limit: str = "2GB"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read once from the environment)."""
    return Settings()
