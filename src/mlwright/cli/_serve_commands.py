"""``mlwright serve``: REST and gRPC (Open Inference Protocol) for one or more models.

Only typer is imported here at module level; the server is imported inside the command.
"""

from __future__ import annotations

import os

import typer

from mlwright.cli._app import app


@app.command()
def serve(
    models: list[str] = typer.Argument(
        ...,
        metavar="MODEL [MODEL ...]",
        help=(
            "Models to serve: an artifact directory, runs:/<id>/model, models:/NAME/VERSION or "
            "models:/NAME@alias; NAME=REFERENCE chooses the name it is served under. The first "
            "model answers POST /predict."
        ),
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="REST port."),
    grpc_port: int = typer.Option(8081, "--grpc-port", help="gRPC port (0: no gRPC)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Server processes."),
    token: str | None = typer.Option(
        None,
        "--token",
        help="Require 'Authorization: Bearer TOKEN' on every endpoint except health "
        "(default: $MLWRIGHT_TOKEN).",
    ),
    watch: bool = typer.Option(
        False, "--watch", help="Swap in the new version when a followed alias moves."
    ),
    watch_interval: float = typer.Option(
        5.0, "--watch-interval", min=0.1, help="Seconds between --watch checks."
    ),
    max_batch_size: int = typer.Option(
        0,
        "--max-batch-size",
        min=0,
        help="Group concurrent requests into model calls of up to this many rows (0: no batching).",
    ),
    max_batch_delay_ms: float = typer.Option(
        2.0, "--max-batch-delay-ms", min=0.0, help="Longest wait for a batch to fill."
    ),
    max_body_bytes: int = typer.Option(
        16 * 1024 * 1024, "--max-body-bytes", min=1024, help="Larger requests get HTTP 413."
    ),
    log: str | None = typer.Option(
        None,
        "--log",
        help="Prediction log store: sqlite:///path.db (default <home>/predictions.db), "
        "jsonl:///path.jsonl, or none.",
    ),
    log_durable: bool = typer.Option(
        True,
        "--log-durable/--log-buffered",
        help="Answer a prediction only once it is in the log (default; survives kill -9), or "
        "answer at once and write the log behind.",
    ),
) -> None:
    """Serve models over REST and gRPC until stopped (Ctrl-C or SIGTERM)."""
    # deferred: mlwright.serve loads FastAPI and scikit-learn (~2 s), not paid by `mlwright --help`
    from mlwright.serve import ServeSettings, run_server

    values = {
        "host": host,
        "port": port,
        "grpc_port": grpc_port,
        "workers": workers,
        "watch": watch,
        "watch_interval_seconds": watch_interval,
        "max_batch_size": max_batch_size,
        "max_batch_delay_ms": max_batch_delay_ms,
        "max_body_bytes": max_body_bytes,
        "log_durable": log_durable,
        "token": token if token is not None else os.environ.get("MLWRIGHT_TOKEN", ""),
    }
    if log is not None:
        values["log_uri"] = log
    settings = ServeSettings(**values)
    run_server(models, settings)
