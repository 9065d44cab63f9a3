"""Settings shared by every stage, read from the environment (``MLWRIGHT_*``).

One pydantic-settings object; the server injects it with FastAPI's ``Depends`` so that tests
can override it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_log_uri", "get_settings", "log_uri_in"]


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
    log_uri
        The prediction log ``mlwright serve`` writes (``MLWRIGHT_LOG_URI``); empty means
        ``<home>/predictions.db``.
    """

    model_config = SettingsConfigDict(env_prefix="MLWRIGHT_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.cwd() / ".mlwright")
    tracking_uri: str = ""
    duckdb_memory_limit: str = "2GB"
    log_uri: str = ""


def log_uri_in(home: Path) -> str:
    """The default prediction log of a project folder: SQLite in ``home/predictions.db``."""
    return f"sqlite:///{(Path(home) / 'predictions.db').resolve()}"


def default_log_uri() -> str:
    """The prediction log ``mlwright serve`` writes by default, read afresh from the
    environment (``MLWRIGHT_LOG_URI``, else ``<MLWRIGHT_HOME>/predictions.db``)."""
    settings = Settings()
    return settings.log_uri or log_uri_in(settings.home)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read once from the environment)."""
    return Settings()
