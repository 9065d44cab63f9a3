"""The server's settings: one pydantic-settings object, injected with FastAPI's ``Depends``.

Values come from the command line (``mlwright serve --port ...``) or the environment
(``MLWRIGHT_TOKEN``, ``MLWRIGHT_SERVE_PORT``, ...); tests build one directly and override the
dependency.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlwright.config import log_uri_in

__all__ = ["ServeSettings", "get_serve_settings"]


class ServeSettings(BaseSettings):
    """How ``mlwright serve`` runs.

    Attributes
    ----------
    host, port, grpc_port
        Where REST and gRPC listen. 127.0.0.1 unless told otherwise; ``grpc_port=0`` turns
        gRPC off.
    workers
        Server processes sharing the port (each loads the models).
    token
        Bearer token required on every endpoint except health (``MLWRIGHT_TOKEN``); empty
        means no authentication.
    max_body_bytes
        Requests with a larger body get HTTP 413.
    max_batch_size, max_batch_delay_ms
        Adaptive batching: concurrent requests for one model are merged into one model call of
        up to ``max_batch_size`` rows, waiting at most ``max_batch_delay_ms`` for company.
        ``max_batch_size <= 1`` turns batching off.
    watch, watch_interval_seconds
        Follow registry aliases (``models:/NAME@alias``) and swap in the version an alias moves
        to, checking every ``watch_interval_seconds``.
    log_uri
        The prediction log store: ``sqlite:///path.db`` (default: ``<home>/predictions.db``),
        ``jsonl:///path.jsonl``, or ``none`` to turn logging off.
    log_queue_size
        Records waiting for the log writer; beyond that, records are dropped and counted.
    log_durable
        Answer a prediction only once it is committed to the log (``MLWRIGHT_LOG_DURABLE``),
        so a server killed outright has logged every prediction it answered; a prediction the
        log cannot take is answered 503. False answers at once and writes behind (a kill
        then loses the last fraction of a second of answered predictions).
    home
        mlwright's project folder (``MLWRIGHT_HOME``), holding the default log.
    """

    model_config = SettingsConfigDict(env_prefix="MLWRIGHT_", extra="ignore", populate_by_name=True)

    host: str = Field(default="127.0.0.1", validation_alias="MLWRIGHT_SERVE_HOST")
    port: int = Field(default=8080, ge=0, le=65535, validation_alias="MLWRIGHT_SERVE_PORT")
    grpc_port: int = Field(default=8081, ge=0, le=65535, validation_alias="MLWRIGHT_GRPC_PORT")
    workers: int = Field(default=1, ge=1)
    token: str = ""
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_batch_size: int = Field(default=0, ge=0)
    max_batch_delay_ms: float = Field(default=2.0, ge=0.0)
    watch: bool = False
    watch_interval_seconds: float = Field(default=5.0, gt=0.0)
    log_uri: str = ""
    log_queue_size: int = Field(default=100_000, ge=1)
    log_durable: bool = True
    home: Path = Field(default_factory=lambda: Path.cwd() / ".mlwright")

    def resolved_log_uri(self) -> str:
        """The prediction log URI, defaulting to SQLite in the home folder."""
        if self.log_uri:
            return self.log_uri
        return log_uri_in(self.home)


def get_serve_settings() -> ServeSettings:
    """FastAPI dependency returning the server's settings (tests override it)."""
    raise RuntimeError("create_app() installs the settings dependency")
