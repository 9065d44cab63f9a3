"""The FastAPI application: plain JSON ``/predict``, the Open Inference Protocol, metrics.

The request path is kept lean: no MLflow, no pandas work beyond building the predictor's
frame, fields checked against a pre-built list, the prediction log fed through a queue, and
metric children cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError as FastAPIValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlwright import __version__
from mlwright.serve._auth import PUBLIC_PATHS, token_matches
from mlwright.serve._batching import Batcher
from mlwright.serve._experiment_routes import attach_experiments
from mlwright.serve._grpc import start_grpc_server
from mlwright.serve._log import LAST_APPENDED, PredictionLog, open_log_store
from mlwright.serve._metrics import CONTENT_TYPE_LATEST, ServeMetrics
from mlwright.serve._monitoring_routes import build_monitoring_router
from mlwright.serve._oip_routes import build_oip_router
from mlwright.serve._openapi import server_openapi
from mlwright.serve._registry import ModelRegistry, ServedModel, Watcher
from mlwright.serve._responses import error_response, json_response
from mlwright.serve._rest_routes import build_rest_router
from mlwright.serve._settings import ServeSettings, get_serve_settings
from mlwright.serve._validate import RequestValidationError, pydantic_problems, summary

__all__ = ["ServerState", "create_app", "get_serve_settings"]

logger = logging.getLogger("mlwright.serve")

#: Requests with more rows than this run in a worker thread, so one big request does not hold
#: up the small ones on the event loop.
INLINE_ROWS = 64


class ServerState:
    """Everything a running server holds: models, settings, log, metrics, batchers."""

    def __init__(
        self,
        registry: ModelRegistry,
        settings: ServeSettings,
        *,
        log: PredictionLog | None,
        metrics: ServeMetrics,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.log = log
        self.metrics = metrics
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mlwright-predict")
        self.batchers: dict[str, Batcher] = {}
        self.watcher: Watcher | None = None
        self.ready = True
        self.inflight = 0
        self.grpc_port: int | None = None
        self.predict_handler: Callable[..., Any] | None = None
        self.infer_handler: Callable[..., Any] | None = None
        # Set by the experiment stage's routes when the log is SQLite (serve/_experiment_routes).
        self.experiments: Any = None
        for model in registry.models():
            metrics.model_info.labels(model.name, model.version).set(1)

    def direct_route(self, scope: dict) -> tuple[Callable[..., Any], tuple] | None:
        """The prediction handler and its path arguments for a POST, or None."""
        path: str = scope["path"]
        if path == "/predict":
            return self.predict_handler, (None,)  # type: ignore[return-value]
        parts = path.split("/")
        # /models/{name}/predict
        if len(parts) == 4 and parts[1] == "models" and parts[3] == "predict" and parts[2]:
            return self.predict_handler, (parts[2],)  # type: ignore[return-value]
        # /v2/models/{name}/infer and /v2/models/{name}/versions/{version}/infer
        if len(parts) >= 5 and parts[1] == "v2" and parts[2] == "models" and parts[-1] == "infer":
            if len(parts) == 5 and parts[3]:
                return self.infer_handler, (parts[3], None)  # type: ignore[return-value]
            if len(parts) == 7 and parts[4] == "versions" and parts[3] and parts[5]:
                return self.infer_handler, (parts[3], parts[5])  # type: ignore[return-value]
        return None

    def batcher(self, name: str) -> Batcher | None:
        if self.settings.max_batch_size <= 1:
            return None
        batcher = self.batchers.get(name)
        if batcher is None:
            batcher = self.batchers[name] = Batcher(
                lambda: self.registry.get(name),
                max_batch_size=self.settings.max_batch_size,
                max_delay=self.settings.max_batch_delay_ms / 1000.0,
                executor=self.executor,
            )
        return batcher

    async def predict(
        self, model: ServedModel, columns: dict[str, list[Any]], n_rows: int
    ) -> tuple[ServedModel, list[Any], Any]:
        """Run the model (batched, inline, or in a thread for large requests)."""
        batcher = self.batcher(model.name)
        if batcher is not None:
            return await batcher.predict(columns, n_rows)
        if n_rows <= INLINE_ROWS:
            labels, probabilities = model.predict_columns(columns, n_rows)
        else:
            loop = asyncio.get_running_loop()
            labels, probabilities = await loop.run_in_executor(
                self.executor, model.predict_columns, columns, n_rows
            )
        return model, labels, probabilities

    def record(
        self,
        model: ServedModel,
        request_id: str,
        features: Any,
        labels: list[Any],
        probabilities: Any,
        started: float,
        *,
        arm: str = "main",
    ) -> dict[str, Any] | None:
        """Metrics and prediction log for one answered request; returns per-row probabilities."""
        rows = None
        if probabilities is not None:
            classes = [str(label) for label in model.classes or []]
            rows = [dict(zip(classes, row, strict=True)) for row in probabilities.tolist()]
        self.metrics.observe_predictions(model.name, model.version, labels, model.task)
        if self.log is not None:
            self.log.append(
                request_id,
                model.name,
                model.version,
                features,
                labels,
                rows,
                (time.perf_counter() - started) * 1000.0,
                arm=arm,
            )
        return rows  # type: ignore[return-value]

    def on_swap(self, old: ServedModel | None, new: ServedModel) -> None:
        if old is not None:
            with contextlib.suppress(KeyError):
                self.metrics.model_info.remove(old.name, old.version)
        self.metrics.model_info.labels(new.name, new.version).set(1)
        self.metrics.swaps.labels(new.name).inc()

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.log is not None:
            self.log.close()
        self.executor.shutdown(wait=True)


class _GuardMiddleware:
    """Pure ASGI middleware: body size limit, bearer token, request metrics.

    A pure ASGI middleware (rather than Starlette's BaseHTTPMiddleware) adds microseconds, not
    a task per request.
    """

    def __init__(self, app: Any, state_getter: Callable[[], ServerState]) -> None:
        self.app = app
        self.state_getter = state_getter

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self.state_getter()
        started = time.perf_counter()
        path: str = scope["path"]
        endpoint = _endpoint_label(path)
        status_holder = [500]

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
            await send(message)

        headers = dict(scope["headers"])
        settings = state.settings
        if settings.token and path not in PUBLIC_PATHS:
            authorization = headers.get(b"authorization")
            if not token_matches(
                settings.token, authorization.decode("latin-1") if authorization else None
            ):
                await _send_json(
                    send,
                    401,
                    {
                        "error": "Missing or wrong bearer token: this server requires "
                        "'Authorization: Bearer <token>' (the --token or MLWRIGHT_TOKEN "
                        "it was started with).",
                    },
                    extra_headers=[(b"www-authenticate", b"Bearer")],
                )
                state.metrics.observe_request(endpoint, 401, time.perf_counter() - started)
                return
        limit = settings.max_body_bytes
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > limit
            except ValueError:
                too_big = False
            if too_big:
                await _send_413(send, limit)
                state.metrics.observe_request(endpoint, 413, time.perf_counter() - started)
                return
            wrapped_receive = receive
        else:
            received = [0]

            async def wrapped_receive() -> dict:
                message = await receive()
                if message["type"] == "http.request":
                    received[0] += len(message.get("body", b""))
                    if received[0] > limit:
                        raise _BodyTooLarge()
                return message

        state.inflight += 1
        try:
            direct = state.direct_route(scope) if scope["method"] == "POST" else None
            if direct is not None:
                # The prediction endpoints are dispatched here, skipping the router's matching
                # and dependency solving; their FastAPI routes still document them.
                handler, arguments = direct
                log = state.log
                if log is not None and log.durable:
                    LAST_APPENDED.set(0)
                response = await handler(Request(scope, wrapped_receive), *arguments)
                if log is not None and log.durable:
                    response = await _logged_or_503(log, response)
                await response(scope, wrapped_receive, send_wrapper)
            else:
                await self.app(scope, wrapped_receive, send_wrapper)
        except _BodyTooLarge:
            await _send_413(send, limit)
            status_holder[0] = 413
        finally:
            state.inflight -= 1
            state.metrics.observe_request(endpoint, status_holder[0], time.perf_counter() - started)


class _BodyTooLarge(Exception):
    pass


#: Seconds an answer waits for its prediction to be committed to the log, at most.
LOG_WAIT_SECONDS = 10.0


async def _logged_or_503(log: PredictionLog, response: Response) -> Response:
    # A durable log: answer only once the request's prediction is committed, so a server
    # killed outright has logged everything it answered. A prediction the log could not take
    # (disk full, read-only, queue full) is answered 503 instead of 200.
    sequence = LAST_APPENDED.get()
    if sequence == 0 or await log.wait_logged(sequence, LOG_WAIT_SECONDS):
        return response
    reason = log.last_error or "the log writer did not keep up (queue full or too slow)"
    return json_response(
        {
            "error": "The prediction was made but could not be written to the prediction log "
            f"({log.store.uri}: {reason}), so it is not answered: every answered prediction "
            "is logged. Free space on the log's disk or make it writable; or restart the "
            "server with --log-buffered to answer without waiting for the log."
        },
        status=503,
        headers={"retry-after": "1"},
    )


async def _send_413(send: Callable, limit: int) -> None:
    await _send_json(
        send,
        413,
        {
            "error": f"The request body is larger than this server accepts ({limit} bytes). Split "
            "the records into smaller requests, or start the server with a larger "
            "--max-body-bytes.",
        },
    )


async def _send_json(
    send: Callable, status: int, content: dict, extra_headers: list | None = None
) -> None:
    body = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": headers + (extra_headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


def _endpoint_label(path: str) -> str:
    # Bounded label values: model names are not in the label (they have their own metrics).
    if path == "/predict":
        return "predict"
    if path.startswith("/models/"):
        return "model_predict" if path.endswith("/predict") else "models"
    if path.startswith("/v2/models/"):
        if path.endswith("/infer"):
            return "v2_infer"
        if path.endswith("/ready"):
            return "v2_model_ready"
        return "v2_model_metadata"
    if path.startswith("/v2/health"):
        return "v2_health"
    if path in ("/v2", "/v2/"):
        return "v2_server_metadata"
    if path == "/metrics":
        return "metrics"
    if path.startswith(("/docs", "/openapi", "/redoc")):
        return "docs"
    return "other"


def create_app(
    registry: ModelRegistry,
    settings: ServeSettings | None = None,
    *,
    log: PredictionLog | None | bool = True,
    watch: bool | None = None,
    grpc: bool = False,
) -> FastAPI:
    """Build the server application for loaded models.

    Parameters
    ----------
    registry
        The models to serve (the first is the default of ``/predict``).
    settings
        Server settings (defaults read from the environment).
    log
        A :class:`PredictionLog`, ``True`` to open the one ``settings`` names, or
        ``False``/``None`` for none.
    watch
        Follow the models' references and swap in new versions (default: ``settings.watch``).
    grpc
        Also serve gRPC on ``settings.grpc_port`` (started and stopped with the app).

    Returns
    -------
    fastapi.FastAPI
        The app; its ``state.server`` is the :class:`ServerState`.
    """
    settings = settings or ServeSettings()
    metrics = ServeMetrics()
    if log is True:
        uri = settings.resolved_log_uri()
        log = (
            None
            if uri.lower() == "none"
            else PredictionLog(
                open_log_store(uri),
                max_queue=settings.log_queue_size,
                on_drop=metrics.log_dropped.inc,
                durable=settings.log_durable,
            )
        )
    elif log is False:
        log = None
    elif log is not None:
        log._on_drop = metrics.log_dropped.inc
    state = ServerState(registry, settings, log=log or None, metrics=metrics)
    follow = settings.watch if watch is None else watch

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _freeze_heap()
        if follow:
            state.watcher = Watcher(
                registry, interval=settings.watch_interval_seconds, on_swap=_swapped
            ).start()
        grpc_server = None
        if grpc and settings.grpc_port:
            grpc_server, state.grpc_port = start_grpc_server(
                state, settings.host, settings.grpc_port
            )
        try:
            yield
        finally:
            state.ready = False
            if grpc_server is not None:
                # In-flight RPCs get the grace period to finish.
                grpc_server.stop(grace=10)
            state.close()

    def _swapped(old: ServedModel | None, new: ServedModel) -> None:
        state.on_swap(old, new)
        app.openapi_schema = None
        _freeze_heap()

    app = FastAPI(
        title="mlwright model server",
        version=__version__,
        description=(
            "Predictions from models trained with mlwright. `POST /predict` takes "
            '`{"records": [{field: value, ...}]}`; the Open Inference Protocol (V2) endpoints '
            "are under `/v2`. Each model's fields, types and categories are in the request "
            "schemas below."
        ),
        lifespan=lifespan,
    )
    app.state.server = state
    app.add_middleware(_GuardMiddleware, state_getter=lambda: state)
    app.dependency_overrides[get_serve_settings] = lambda: state.settings
    # Monitoring: POST /feedback, GET /dashboard (owned by the monitoring stage).

    app.include_router(build_monitoring_router(state))
    # Online experiments: arm routing, POST /outcome, GET /experiments (experiment stage).

    attach_experiments(app, state)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, err: RequestValidationError) -> Response:
        return error_response(state, None, err)

    @app.exception_handler(FastAPIValidationError)
    async def _fastapi_validation(request: Request, err: FastAPIValidationError) -> Response:
        problems = pydantic_problems(err.errors())
        return json_response({"error": summary(problems), "detail": problems}, status=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException) -> Response:
        return json_response(
            {"error": str(err.detail)},
            status=err.status_code,
            headers=getattr(err, "headers", None),
        )

    app.include_router(build_rest_router(state))
    app.include_router(build_oip_router(state))

    # -- operations ----------------------------------------------------------------------------
    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=Response)
    async def metrics_endpoint() -> Response:
        if state.log is not None:
            metrics.log_pending.set(state.log.pending)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.openapi = lambda: server_openapi(app, state)  # type: ignore[method-assign]
    return app


def _freeze_heap() -> None:
    """Move everything alive now (libraries, models) out of the garbage collector's view.

    The loaded libraries and models are millions of objects that never die; a full collection
    walking them takes milliseconds and would land on some request. Frozen, collections only
    walk what requests allocate.
    """
    gc.collect()
    gc.freeze()
