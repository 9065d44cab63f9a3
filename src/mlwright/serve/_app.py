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

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError as FastAPIValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlwright import __version__
from mlwright.serve import _json as fast_json
from mlwright.serve._auth import PUBLIC_PATHS, token_matches
from mlwright.serve._batching import Batcher
from mlwright.serve._grpc import start_grpc_server
from mlwright.serve._log import PredictionLog, open_log_store
from mlwright.serve._metrics import CONTENT_TYPE_LATEST, ServeMetrics
from mlwright.serve._oip import (
    InferenceRequest,
    InferenceResponse,
    MetadataModelResponse,
    MetadataServerResponse,
    decode_inputs,
    encode_outputs,
    model_metadata,
    new_request_id,
    raw_to_list,
)
from mlwright.serve._openapi import component_prefix, model_components
from mlwright.serve._registry import ModelRegistry, ServedModel, Watcher
from mlwright.serve._settings import ServeSettings
from mlwright.serve._validate import RequestValidationError, check_records, problem, summary

__all__ = ["ServerState", "create_app", "get_serve_settings"]

logger = logging.getLogger("mlwright.serve")

#: Requests with more rows than this run in a worker thread, so one big request does not hold
#: up the small ones on the event loop.
INLINE_ROWS = 64


def get_serve_settings() -> ServeSettings:
    """FastAPI dependency returning the server's settings (tests override it)."""
    raise RuntimeError("create_app() installs the settings dependency")


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
                response = await handler(Request(scope, wrapped_receive), *arguments)
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


def _json_response(content: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        fast_json.dumps(content),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _error_response(
    state: ServerState, model_name: str | None, err: RequestValidationError
) -> Response:
    for item in err.problems:
        state.metrics.validation_failures.labels(model_name or "-", item["kind"]).inc()
    return _json_response(
        {"error": summary(err.problems), "detail": err.problems}, status=err.status
    )


def _not_found(registry: ModelRegistry, name: str | None, version: str | None) -> Response:
    loaded = ", ".join(f"'{m.name}' (version {m.version})" for m in registry.models())
    if name is not None and registry.get(name) is not None and version:
        message = (
            f"Model '{name}' has no version '{version}' loaded here; the loaded version is "
            f"'{registry.get(name).version}'."  # type: ignore[union-attr]
        )
    else:
        message = f"No model called '{name}' is loaded. Loaded models: {loaded}."
    return _json_response({"error": message}, status=404)


def _parse_json(body: bytes) -> Any:
    if not body:
        raise RequestValidationError(
            [problem(None, "malformed_json", "the request body is empty; send a JSON object")],
            status=400,
        )
    try:
        return fast_json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise RequestValidationError(
            [problem(None, "malformed_json", f"the request body is not valid JSON ({err})")],
            status=400,
        ) from err


def _check_content_type(request: Request) -> None:
    content_type = request.headers.get("content-type", "application/json")
    if "json" not in content_type and "octet-stream" not in content_type and content_type:
        raise RequestValidationError(
            [
                problem(
                    None,
                    "unsupported_media_type",
                    f"the request body is '{content_type}'; send application/json",
                )
            ],
            status=415,
        )


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
    from mlwright.serve._monitoring_routes import build_monitoring_router

    app.include_router(build_monitoring_router(state))
    # Online experiments: arm routing, POST /outcome, GET /experiments (experiment stage).
    from mlwright.serve._experiment_routes import attach_experiments

    attach_experiments(app, state)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, err: RequestValidationError) -> Response:
        return _error_response(state, None, err)

    @app.exception_handler(FastAPIValidationError)
    async def _fastapi_validation(request: Request, err: FastAPIValidationError) -> Response:
        problems = [
            problem(
                ".".join(str(part) for part in item.get("loc", ())),
                item.get("type", "invalid"),
                f"{'.'.join(str(p) for p in item.get('loc', ()))}: {item.get('msg')}",
            )
            for item in err.errors()
        ]
        return _json_response({"error": summary(problems), "detail": problems}, status=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException) -> Response:
        return _json_response(
            {"error": str(err.detail)},
            status=err.status_code,
            headers=getattr(err, "headers", None),
        )

    # -- plain JSON --------------------------------------------------------------------------
    async def _predict(request: Request, name: str | None) -> Response:
        started = time.perf_counter()
        model = registry.get(name)
        if model is None:
            return _not_found(registry, name, None)
        try:
            _check_content_type(request)
            payload = _parse_json(await request.body())
            if not isinstance(payload, dict):
                raise RequestValidationError(
                    [
                        problem(
                            None,
                            "wrong_type",
                            'the request body must be a JSON object {"records": [...]}',
                        )
                    ]
                )
            extra = [key for key in payload if key not in ("records", "arm")]
            if extra:
                raise RequestValidationError(
                    [
                        problem(
                            key,
                            "unknown_field",
                            f"the request has the key '{key}'; send "
                            '{"records": [{field: value, ...}, ...]}',
                        )
                        for key in extra
                    ]
                )
            if "records" not in payload:
                raise RequestValidationError(
                    [
                        problem(
                            "records",
                            "missing_field",
                            "the request lacks 'records': send "
                            '{"records": [{field: value, ...}, ...]}',
                        )
                    ]
                )
            records = payload["records"]
            columns, n_rows = check_records(model, records)
        except RequestValidationError as err:
            return _error_response(state, model.name, err)
        request_id = request.headers.get("x-request-id") or new_request_id()
        # A model under an online experiment answers with the request's arm (experiment stage).
        active = state.experiments.active(model.name) if state.experiments else None
        if active is None:
            used, labels, probabilities = await state.predict(model, columns, n_rows)
            arm = "main"
        else:
            try:
                unit = state.experiments.unit(
                    active,
                    fallback=request_id,
                    record=records[0],
                    header=request.headers.get("x-unit-key"),
                    status=422,
                )
            except RequestValidationError as err:
                return _error_response(state, model.name, err)
            used, labels, probabilities, arm = await state.experiments.predict(
                active,
                model,
                unit=unit,
                request_id=request_id,
                columns=columns,
                n_rows=n_rows,
                prepare=lambda other: check_records(other, records),
                features=records,
            )
        rows = state.record(used, request_id, records, labels, probabilities, started, arm=arm)
        content: dict[str, Any] = {"predictions": _plain_labels(labels)}
        if rows is not None:
            content["probabilities"] = rows
        content.update(model=used.name, version=used.version, request_id=request_id)
        return _json_response(content, headers={"x-request-id": request_id})

    state.predict_handler = _predict

    @app.post(
        "/predict",
        tags=["predict"],
        summary="Predict with the default model",
        response_model=None,
        openapi_extra={"x-mlwright-model": "default"},
    )
    async def predict(request: Request) -> Response:
        return await _predict(request, None)

    @app.post(
        "/models/{name}/predict",
        tags=["predict"],
        summary="Predict with a named model",
        response_model=None,
        openapi_extra={"x-mlwright-model": "named"},
    )
    async def predict_named(name: str, request: Request) -> Response:
        return await _predict(request, name)

    @app.get("/models", tags=["models"], summary="Loaded models")
    async def list_models() -> dict[str, Any]:
        return {
            "models": [model.describe() for model in registry.models()],
            "default": registry.default_name,
        }

    # -- Open Inference Protocol ---------------------------------------------------------------
    @app.get("/v2/health/live", tags=["v2"], summary="Server liveness")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get(
        "/v2/health/ready",
        tags=["v2"],
        summary="Server readiness",
        responses={503: {"description": "Not ready"}},
    )
    async def ready() -> Response:
        ok = state.ready and len(registry) > 0
        return _json_response({"ready": ok}, status=200 if ok else 503)

    @app.get("/v2", tags=["v2"], summary="Server metadata", response_model=MetadataServerResponse)
    async def server_metadata(
        current: ServeSettings = Depends(get_serve_settings),
    ) -> dict[str, Any]:
        return {"name": "mlwright", "version": __version__, "extensions": []}

    def _model_or_404(name: str, version: str | None) -> ServedModel | Response:
        model = registry.get(name, version)
        if model is None and version and state.experiments is not None:
            # A version an experiment's arm serves is answered too (outside the experiment).
            model = state.experiments.arm_model(name, version)
        return model if model is not None else _not_found(registry, name, version)

    async def _metadata(name: str, version: str | None) -> Response:
        found = _model_or_404(name, version)
        if isinstance(found, Response):
            return found
        return _json_response(model_metadata(found))

    async def _model_ready(name: str, version: str | None) -> Response:
        found = _model_or_404(name, version)
        if isinstance(found, Response):
            return found
        return _json_response({"name": found.name, "ready": state.ready})

    @app.get(
        "/v2/models/{name}",
        tags=["v2"],
        summary="Model metadata",
        response_model=MetadataModelResponse,
        responses={404: {"description": "Unknown"}},
    )
    async def metadata(name: str) -> Response:
        return await _metadata(name, None)

    @app.get(
        "/v2/models/{name}/versions/{version}",
        tags=["v2"],
        summary="Model metadata (one version)",
        response_model=MetadataModelResponse,
        responses={404: {"description": "Unknown"}},
    )
    async def metadata_version(name: str, version: str) -> Response:
        return await _metadata(name, version)

    @app.get(
        "/v2/models/{name}/ready",
        tags=["v2"],
        summary="Model readiness",
        responses={404: {"description": "Unknown"}},
    )
    async def model_ready(name: str) -> Response:
        return await _model_ready(name, None)

    @app.get(
        "/v2/models/{name}/versions/{version}/ready",
        tags=["v2"],
        summary="Model readiness (one version)",
        responses={404: {"description": "Unknown"}},
    )
    async def model_ready_version(name: str, version: str) -> Response:
        return await _model_ready(name, version)

    async def _infer(request: Request, name: str, version: str | None) -> Response:
        started = time.perf_counter()
        found = _model_or_404(name, version)
        if isinstance(found, Response):
            return found
        model = found
        try:
            body = await request.body()
            header_length = request.headers.get("inference-header-content-length")
            binary = b""
            if header_length is not None:
                try:
                    split = int(header_length)
                except ValueError as err:
                    raise RequestValidationError(
                        [
                            problem(
                                None,
                                "malformed_json",
                                "Inference-Header-Content-Length is not a number",
                            )
                        ],
                        status=400,
                    ) from err
                body, binary = body[:split], body[split:]
            else:
                _check_content_type(request)
            payload = _parse_json(body)
            try:
                parsed = InferenceRequest.model_validate(payload)
            except Exception as err:  # pydantic.ValidationError
                raise _pydantic_problems(err) from err
            inputs = _tensor_inputs(parsed, binary)
            columns, n_rows = decode_inputs(model, inputs)
            requested = [output.name for output in parsed.outputs or []] or None
        except RequestValidationError as err:
            return _error_response(state, model.name, err)
        request_id = parsed.id or request.headers.get("x-request-id") or new_request_id()
        # Under an online experiment the request's arm answers, unless it named a version.
        active = (
            state.experiments.active(model.name)
            if state.experiments is not None and version is None
            else None
        )
        parameters: dict[str, Any] = {"content_type": "pd"}
        if active is None:
            used, labels, probabilities = await state.predict(model, columns, n_rows)
            arm = "main"
        else:
            try:
                unit = state.experiments.unit(
                    active,
                    fallback=request_id,
                    parameters=parsed.parameters,
                    header=request.headers.get("x-unit-key"),
                    status=400,
                )
            except RequestValidationError as err:
                return _error_response(state, model.name, err)
            used, labels, probabilities, arm = await state.experiments.predict(
                active,
                model,
                unit=unit,
                request_id=request_id,
                columns=columns,
                n_rows=n_rows,
                prepare=lambda other: decode_inputs(other, inputs),
                features=columns,
            )
            parameters.update(experiment=active.experiment.name, arm=arm)
        try:
            outputs = encode_outputs(used, labels, probabilities, requested)
        except RequestValidationError as err:
            return _error_response(state, model.name, err)
        state.record(used, request_id, columns, labels, probabilities, started, arm=arm)
        return _json_response(
            {
                "model_name": used.name,
                "model_version": used.version,
                "id": request_id,
                "parameters": parameters,
                "outputs": outputs,
            }
        )

    state.infer_handler = _infer

    infer_doc = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}}
            },
        }
    }

    @app.post(
        "/v2/models/{name}/infer",
        tags=["v2"],
        summary="Inference (Open Inference Protocol)",
        response_model=InferenceResponse,
        openapi_extra=infer_doc,
        responses={400: {"description": "Invalid input"}, 404: {"description": "Unknown"}},
    )
    async def infer(name: str, request: Request) -> Response:
        return await _infer(request, name, None)

    @app.post(
        "/v2/models/{name}/versions/{version}/infer",
        tags=["v2"],
        summary="Inference with one version",
        response_model=InferenceResponse,
        openapi_extra=infer_doc,
        responses={400: {"description": "Invalid input"}, 404: {"description": "Unknown"}},
    )
    async def infer_version(name: str, version: str, request: Request) -> Response:
        return await _infer(request, name, version)

    # -- operations ----------------------------------------------------------------------------
    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=Response)
    async def metrics_endpoint() -> Response:
        if state.log is not None:
            metrics.log_pending.set(state.log.pending)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components["InferenceRequest"] = InferenceRequest.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        for key, value in components["InferenceRequest"].pop("$defs", {}).items():
            components.setdefault(key, value)
        error_schema = {
            "type": "object",
            "properties": {
                "error": {"type": "string"},
                "detail": {"type": "array", "items": {"type": "object"}},
            },
        }
        components["Error"] = error_schema
        models = registry.models()
        for model in models:
            components.update(model_components(model))
        default = registry.get(None)
        paths = document.get("paths", {})
        errors = {
            str(code): {
                "description": text,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
            for code, text in (
                (400, "Malformed JSON"),
                (401, "Missing or wrong token"),
                (404, "Unknown model"),
                (413, "Body too large"),
                (422, "Invalid records (field-level detail)"),
            )
        }

        def body(model: ServedModel) -> dict[str, Any]:
            prefix = component_prefix(model)
            return {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{prefix}PredictRequest"}
                    }
                },
            }

        if default is not None and "/predict" in paths:
            operation = paths["/predict"]["post"]
            operation["requestBody"] = body(default)
            prefix = component_prefix(default)
            operation["responses"] = {
                "200": {
                    "description": "Predictions",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{prefix}PredictResponse"}
                        }
                    },
                },
                **errors,
            }
            operation["summary"] = f"Predict with '{default.name}' (version {default.version})"
        if "/models/{name}/predict" in paths:
            operation = paths["/models/{name}/predict"]["post"]
            for parameter in operation.get("parameters", []):
                if parameter.get("name") == "name":
                    parameter["schema"] = {"type": "string", "enum": [m.name for m in models]}
            refs = [
                {"$ref": f"#/components/schemas/{component_prefix(m)}PredictRequest"}
                for m in models
            ]
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": refs[0] if len(refs) == 1 else {"oneOf": refs}}
                },
            }
            operation["responses"] = {"200": {"description": "Predictions"}, **errors}
        for path, item in paths.items():
            if path.startswith("/v2/models/{name}"):
                for operation in item.values():
                    for parameter in operation.get("parameters", []):
                        if parameter.get("name") == "name":
                            parameter["schema"] = {
                                "type": "string",
                                "enum": [m.name for m in models],
                            }
                        elif parameter.get("name") == "version":
                            parameter["schema"] = {
                                "type": "string",
                                "enum": sorted({m.version for m in models}),
                            }
        document.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}
        }
        if settings.token:
            for path, item in paths.items():
                if path not in PUBLIC_PATHS:
                    for operation in item.values():
                        operation["security"] = [{"bearer": []}]
        app.openapi_schema = document
        return document

    app.openapi = custom_openapi  # type: ignore[method-assign]
    return app


def _freeze_heap() -> None:
    """Move everything alive now (libraries, models) out of the garbage collector's view.

    The loaded libraries and models are millions of objects that never die; a full collection
    walking them takes milliseconds and would land on some request. Frozen, collections only
    walk what requests allocate.
    """
    gc.collect()
    gc.freeze()


def _plain_labels(labels: list[Any]) -> list[Any]:
    if labels and isinstance(labels[0], np.generic):
        return [label.item() for label in labels]
    return labels


def _pydantic_problems(err: Exception) -> RequestValidationError:
    errors = getattr(err, "errors", None)
    items = errors() if callable(errors) else []
    problems = []
    for item in items[:50]:
        location = ".".join(str(part) for part in item.get("loc", ()))
        problems.append(
            problem(
                location or None,
                str(item.get("type", "invalid")),
                f"{location or 'body'}: {item.get('msg')}",
            )
        )
    return RequestValidationError(problems or [problem(None, "invalid", str(err))], status=400)


def _tensor_inputs(
    parsed: InferenceRequest, binary: bytes
) -> list[tuple[str, str, list[int], list[Any]]]:
    """Inputs as ``(name, datatype, shape, data)``; binary-extension data decoded."""
    inputs = []
    offset = 0
    for tensor in parsed.inputs:
        parameters = tensor.parameters or {}
        size = parameters.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise RequestValidationError(
                    [
                        problem(
                            tensor.name,
                            "bad_binary_data",
                            f"input '{tensor.name}' announces {size} bytes of binary "
                            f"data, but the body holds {len(binary) - offset}",
                        )
                    ],
                    status=400,
                )
            chunk = binary[offset : offset + size]
            offset += size
            data = raw_to_list(tensor.name, tensor.datatype, chunk)
        else:
            data = tensor.data if tensor.data is not None else []
        inputs.append((tensor.name, tensor.datatype, list(tensor.shape), data))
    return inputs
