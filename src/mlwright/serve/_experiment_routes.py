"""Online experiments in the server: arm routing, shadow scoring and ``POST /outcome``.

Owned by the experiment stage. Every prediction endpoint (``POST /predict``, the Open
Inference Protocol's ``POST /v2/models/{name}/infer`` and gRPC ``ModelInfer``) calls
:meth:`ExperimentRouting.active` (a dictionary lookup) and, for a model under experiment,
reads the unit key with :meth:`ExperimentRouting.unit` and answers through
:meth:`ExperimentRouting.predict`, the one routing function: it picks the arm by the unit's
sticky hash, answers with that arm's model and, in shadow mode, scores the other arms in the
background and logs them as ``shadow:<arm>``. A request naming a version explicitly
(``/versions/{v}``, gRPC ``model_version``) bypasses the experiment. Running
experiments are read from the experiment tables in the prediction log's SQLite file every
few seconds in a background thread (models of new arms are loaded there too), so
``mlwright experiment start`` and ``stop`` take effect on a running server without a
restart and the request path never waits for disk or model loading.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from mlwright.errors import MlwrightError
from mlwright.experiment import ExperimentStore, Ramp, analyze, route, weights_at
from mlwright.serve._registry import load_served_model
from mlwright.serve._responses import error_response, parse_body
from mlwright.serve._validate import RequestValidationError, problem

logger = logging.getLogger(__name__)

#: Seconds between reads of the experiment definitions.
REFRESH_SECONDS = 2.0
_INLINE_ROWS = 64
#: The generic request parameter carrying the unit key (besides the experiment's own name).
UNIT_PARAMETER = "unit_key"
#: HTTP header (gRPC metadata key) carrying the unit key.
UNIT_HEADER = "x-unit-key"
#: Longest accepted unit key; longer ones are refused (HTTP 4xx, gRPC INVALID_ARGUMENT).
MAX_UNIT_LENGTH = 256


class _Active:
    """One running experiment with its arms' loaded models."""

    def __init__(self, experiment: Any, models: dict[str, Any]) -> None:
        self.experiment = experiment
        self.models = models
        self.weights = experiment.weights
        self.ramp = None
        if experiment.ramp:
            self.ramp = Ramp(**experiment.ramp)


class ExperimentRouting:
    """Routes requests of models under experiment (see the module docstring).

    Parameters
    ----------
    state
        The server's ``ServerState`` (log, executor, metrics).
    log_uri
        The SQLite prediction log holding the experiment tables.
    """

    def __init__(self, state: Any, log_uri: str, *, interval: float = REFRESH_SECONDS) -> None:
        self.state = state
        self.log_uri = log_uri
        self.interval = interval
        self.errors: dict[tuple[str, str], int] = {}
        self._active: dict[str, _Active] = {}
        self._loaded: dict[str, Any] = {}
        self._checked = 0.0
        self._refreshing = threading.Lock()
        self.refresh()

    # -- definitions ------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read running experiments and load the arms' models (never raises)."""
        if not self._refreshing.acquire(blocking=False):
            return
        try:
            self._checked = time.monotonic()

            served = set(self.state.registry.names())
            running = [
                e for e in ExperimentStore(self.log_uri).list(status="running") if e.model in served
            ]
            active: dict[str, _Active] = {}
            for experiment in running:
                previous = self._active.get(experiment.model)
                if previous is not None and previous.experiment.name == experiment.name:
                    active[experiment.model] = previous
                    continue
                models = {
                    arm.name: self._load(arm.reference, experiment.model) for arm in experiment.arms
                }
                active[experiment.model] = _Active(experiment, models)
            self._active = active  # one assignment: requests see the old or the new map
        except Exception:
            # A broken definition or an arm that cannot load must not take the server down;
            # the model keeps serving its normal version and the problem is logged.
            logger.exception("reading experiments from %s failed", self.log_uri)
        finally:
            self._refreshing.release()

    def _load(self, reference: str, name: str) -> Any:
        model = self._loaded.get(reference)
        if model is None:
            model = self._loaded[reference] = load_served_model(reference, name=name)
        return model

    def active(self, name: str) -> _Active | None:
        """The running experiment of model ``name`` (schedules a refresh when stale)."""
        if time.monotonic() - self._checked > self.interval:
            self._checked = time.monotonic()
            threading.Thread(target=self.refresh, name="mlwright-experiments", daemon=True).start()
        return self._active.get(name)

    # -- request path -----------------------------------------------------------------------
    def arm_model(self, name: str, version: str) -> Any:
        """The loaded model of an arm of ``name``'s running experiment at ``version``, or None.

        An explicit ``/versions/{v}`` request (or a gRPC ``model_version``) bypasses the
        experiment; when ``v`` is not the server's own version but an arm's, the arm's loaded
        model answers it.
        """
        active = self._active.get(name)
        if active is None:
            return None
        for model in active.models.values():
            if model is not None and str(model.version) == str(version):
                return model
        return None

    def unit(
        self,
        active: _Active,
        *,
        fallback: str,
        record: Any = None,
        parameters: Mapping[str, Any] | None = None,
        header: str | None = None,
        status: int = 400,
    ) -> str:
        """The request's unit key, the one place every endpoint reads it from.

        Looked up in order: the record field named by the experiment's unit key (``/predict``
        records), the request parameter of that name or ``unit_key`` (Open Inference Protocol
        ``parameters``, REST or gRPC), the ``X-Unit-Key`` header (gRPC metadata
        ``x-unit-key``); without any, ``fallback`` (the request id: no stickiness).

        Raises
        ------
        RequestValidationError
            A parameter or header that is not a non-empty string or whole number of at most
            :data:`MAX_UNIT_LENGTH` characters (``status``: HTTP 4xx, gRPC INVALID_ARGUMENT).
        """
        key = active.experiment.unit_key
        if key and isinstance(record, dict):
            value = record.get(key)
            if value is not None:
                # A model field: already validated by the model's schema.
                return str(value)
        if parameters:
            for name in (key, UNIT_PARAMETER):
                if name and name in parameters:
                    return _unit_value(parameters[name], f"parameters.{name}", status)
        if header is not None:
            return _unit_value(header, "X-Unit-Key header", status)
        return fallback

    async def _run(self, model: Any, columns: dict[str, list[Any]], n_rows: int) -> Any:
        if n_rows <= _INLINE_ROWS:
            return model.predict_columns(columns, n_rows)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.state.executor, model.predict_columns, columns, n_rows
        )

    async def predict(
        self,
        active: _Active,
        default: Any,
        *,
        unit: str,
        request_id: str,
        columns: dict[str, list[Any]],
        n_rows: int,
        prepare: Callable[[Any], tuple[dict[str, list[Any]], int]],
        features: Any,
    ) -> tuple[Any, list[Any], Any, str]:
        """Answer one request of a model under experiment: the routing every endpoint uses.

        Parameters
        ----------
        active
            The model's running experiment (from :meth:`active`).
        default
            The server's own model of that name; ``columns``/``n_rows`` are the request
            validated against it.
        unit
            The unit key (from :meth:`unit`).
        request_id
            The request id (shadow scores are logged under it).
        prepare
            Validates the request for another model (an arm's schema): ``model -> (columns,
            n_rows)``. ``/predict`` checks its records, the inference endpoints decode their
            tensors.
        features
            What the log keeps as the request's features (shadow records).

        Returns
        -------
        tuple
            ``(model, labels, probabilities, arm)``: the model that answered and its arm.
        """
        experiment = active.experiment
        routing = route(
            unit,
            active.weights,
            salt=experiment.name,
            shadow=experiment.shadow,
            control=experiment.control,
            ramp=active.ramp,
            elapsed=time.time() - experiment.started,
        )
        arm = routing.arm
        model = active.models.get(arm, default)
        try:
            arm_columns = columns if model is default else prepare(model)[0]
            labels, probabilities = await self._run(model, arm_columns, n_rows)
        except Exception:
            # The arm failed where the normal model would answer: count it against the arm
            # (the error-rate guardrail) and answer with the control so the caller is served.
            key = (experiment.name, arm)
            self.errors[key] = self.errors.get(key, 0) + 1
            self.state.executor.submit(self._record_error, experiment, arm, request_id)
            logger.exception("arm %s of experiment %s failed", arm, experiment.name)
            model, arm = active.models.get(experiment.control, default), experiment.control
            try:
                arm_columns = columns if model is default else prepare(model)[0]
                labels, probabilities = await self._run(model, arm_columns, n_rows)
            except Exception:
                if model is default:
                    raise
                # The control cannot answer either: the server's own model does, outside
                # the experiment (its validation already accepted the request).
                logger.exception("control of experiment %s failed", experiment.name)
                model, arm = default, "main"
                labels, probabilities = await self._run(model, columns, n_rows)
        for shadow in routing.shadow:
            shadow_model = active.models.get(shadow)
            if shadow_model is not None:
                self.state.executor.submit(
                    self._shadow, shadow_model, shadow, prepare, features, request_id
                )
        return model, labels, probabilities, arm

    def _record_error(self, experiment: Any, arm: str, request_id: str) -> None:
        """Keep the failure as an ``error`` outcome (the analysis' error-rate guardrail)."""
        try:
            ExperimentStore(self.log_uri).add_outcomes(
                experiment, [{"request_id": request_id, "arm": arm, "metric": "error", "value": 1}]
            )
        except Exception:
            logger.exception("recording an arm error of %s failed", experiment.name)

    def _shadow(
        self, model: Any, arm: str, prepare: Callable[..., Any], features: Any, request_id: str
    ) -> None:
        started = time.perf_counter()
        try:
            columns, n_rows = prepare(model)
            labels, probabilities = model.predict_columns(columns, n_rows)
        except Exception:
            logger.exception("shadow arm %s failed", arm)
            return
        if self.state.log is None:
            return
        rows = None
        if probabilities is not None:
            classes = [str(label) for label in model.classes or []]
            rows = [dict(zip(classes, row, strict=True)) for row in probabilities.tolist()]
        plain = [label.item() if hasattr(label, "item") else label for label in labels]
        self.state.log.append(
            request_id,
            model.name,
            model.version,
            features,
            plain,
            rows,
            (time.perf_counter() - started) * 1000.0,
            arm=f"shadow:{arm}",
        )


def _unit_value(value: Any, where: str, status: int) -> str:
    """A unit key given as a parameter or header, checked (strings and whole numbers only)."""

    text = None
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    if not text or len(text) > MAX_UNIT_LENGTH:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        reason = f"is {len(text)} characters long" if text else f"is {shown}"
        raise RequestValidationError(
            [
                problem(
                    where,
                    "bad_unit_key",
                    f"the unit key in the {where} {reason}; send a non-empty string or whole "
                    f"number of at most {MAX_UNIT_LENGTH} characters (a user or session id) "
                    "that identifies who the request is for",
                )
            ],
            status=status,
        )
    return text


def _json(content: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(content, default=str), status_code=status, media_type="application/json"
    )


def attach_experiments(app: Any, state: Any) -> None:
    """Install experiment routing on ``state`` and the ``/outcome`` and ``/experiments`` routes."""
    uri = getattr(getattr(state.log, "store", None), "uri", None)
    if uri and uri.lower().startswith("sqlite:///"):
        state.experiments = ExperimentRouting(state, uri)
    app.include_router(_router(state))


class Outcome(BaseModel):
    """One outcome: a metric value for a request (or a unit) of an experiment."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"anyOf": [{"required": ["request_id"]}, {"required": ["unit"]}]},
    )

    # Optional fields are absent rather than null: JSON null is refused, as the schema says.
    experiment: str = Field(
        None, min_length=1, description="The experiment (optional when one is running)."
    )
    request_id: str = Field(
        None, min_length=1, description="The id of the prediction the outcome belongs to."
    )
    unit: str = Field(
        None, min_length=1, description="The unit key (user, session) instead of a request id."
    )
    arm: str = Field(None, min_length=1, description="The arm, when known.")
    metric: str = Field(min_length=1, description="The metric, e.g. 'conversion'.")
    value: float = Field(
        strict=True, allow_inf_nan=False, description="A finite number (1/0 for a conversion)."
    )
    timestamp: float = Field(
        None, strict=True, allow_inf_nan=False, description="Unix seconds (default: now)."
    )

    @model_validator(mode="after")
    def _request_or_unit(self) -> Outcome:
        if self.request_id is None and self.unit is None:
            raise ValueError(
                "an outcome names neither a request_id nor a unit; give the request id "
                "/predict returned or the unit key value"
            )
        return self


_OUTCOMES = Annotated[list[Outcome], Field(min_length=1)]
#: ``POST /outcome`` accepts one outcome or a non-empty list; the OpenAPI document declares it.
OUTCOME_BODY: TypeAdapter = TypeAdapter(Outcome | _OUTCOMES)
_ONE_OUTCOME, _OUTCOME_LIST = TypeAdapter(Outcome), TypeAdapter(_OUTCOMES)


def _outcome_shape(payload: Any) -> TypeAdapter:
    """The list or the single-outcome half of :data:`OUTCOME_BODY`, by what was sent."""
    return _OUTCOME_LIST if isinstance(payload, list) else _ONE_OUTCOME


def _router(state: Any) -> APIRouter:
    router = APIRouter()

    def _store() -> Any:
        return ExperimentStore(state.experiments.log_uri)

    @router.post("/outcome", tags=["experiments"], summary="Record experiment outcomes")
    async def outcome(request: Request) -> Response:
        """Record outcomes of an experiment: a conversion, revenue, a label.

        Body: ``{"experiment": "name", "request_id": "..." | "unit": "...", "metric":
        "conversion", "value": 1}`` or a list of such objects (``experiment`` may be left out
        when one experiment is running).
        """
        if getattr(state, "experiments", None) is None:
            return _json(
                {"error": "Experiments need the SQLite prediction log; this server has none."},
                status=409,
            )
        try:
            body = parse_body(_outcome_shape, await request.body())
        except RequestValidationError as err:
            return error_response(state, None, err)
        items = [
            item.model_dump(exclude_none=True)
            for item in (body if isinstance(body, list) else [body])
        ]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(state.executor, _record_outcomes, items)

    def _record_outcomes(items: list[dict[str, Any]]) -> Response:
        store = _store()
        running = store.list(status="running")
        groups: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            name = item.pop("experiment", None)
            if name is None:
                if len(running) != 1:
                    # The request is fine; the server's state cannot tell which experiment.
                    return _json(
                        {
                            "error": 'Name the experiment ("experiment": NAME): '
                            f"{len(running)} experiments are running "
                            f"({[e.name for e in running]})."
                        },
                        status=409,
                    )
                name = running[0].name
            groups.setdefault(name, []).append(item)
        counts: dict[str, int] = {}
        for name, group in groups.items():
            experiment = store.get(name, missing_ok=True)
            if experiment is None:
                return _json({"error": f"No experiment called {name!r}."}, status=404)
            try:
                counts[name] = store.add_outcomes(experiment, group)
            except MlwrightError as err:
                return _json({"error": str(err)}, status=422)
        return _json({"recorded": counts})

    @router.get("/experiments", tags=["experiments"], summary="Experiments and their arms")
    def experiments() -> Response:
        """Running and stopped experiments, with arm errors seen by this server."""
        if getattr(state, "experiments", None) is None:
            return _json({"experiments": []})
        errors = state.experiments.errors
        listed = []
        for experiment in _store().list():
            item = experiment.to_dict()
            item["arm_errors"] = {
                arm.name: errors.get((experiment.name, arm.name), 0) for arm in experiment.arms
            }
            listed.append(item)
        return _json({"experiments": listed})

    panel_cache: dict[str, Any] = {}
    panel_lock = threading.Lock()

    def _panel() -> dict[str, Any]:
        with panel_lock:
            cached = panel_cache.get("panel")
            if cached is not None and time.monotonic() - cached[0] < PANEL_CACHE_SECONDS:
                return cached[1]
            payload = dashboard_panel(state)
            panel_cache["panel"] = (time.monotonic(), payload)
            return payload

    @router.get(
        "/dashboard/experiments",
        tags=["experiments"],
        summary="Running experiments for the dashboard",
    )
    async def dashboard_experiments() -> Response:
        """Per running experiment: arms with weights, traffic, the primary metric per arm
        with its interval, the always-valid p-value, the SRM check and the guardrails."""
        if getattr(state, "experiments", None) is None:
            return _json({"generated": time.time(), "experiments": []})
        loop = asyncio.get_running_loop()
        return _json(await loop.run_in_executor(state.executor, _panel))

    return router


#: Seconds a computed dashboard panel is reused (each computation reads the experiment's log).
PANEL_CACHE_SECONDS = 5.0


def dashboard_panel(state: Any) -> dict[str, Any]:
    """The experiments panel of ``/dashboard``: one entry per running experiment.

    Each entry is the analysis ``mlwright experiment analyze`` reports (computed without
    recording to MLflow or saving it), reduced to what the page draws.
    """
    routing = state.experiments
    now = time.time()
    entries = []
    for experiment in ExperimentStore(routing.log_uri).list(status="running"):
        entry: dict[str, Any] = {
            "name": experiment.name,
            "model": experiment.model,
            "shadow": experiment.shadow,
            "unit_key": experiment.unit_key,
            "started": experiment.started,
            "alpha": experiment.alpha,
            "control": experiment.control,
        }
        try:
            result = analyze(experiment.name, log=routing.log_uri, record=False, save=False)
        except MlwrightError as err:
            entry["error"] = str(err)
            entries.append(entry)
            continue
        ramp = Ramp(**experiment.ramp) if experiment.ramp else None
        current = weights_at(experiment.weights, ramp, now - experiment.started)
        active = routing._active.get(experiment.model)
        loaded = (
            active.models
            if active is not None and active.experiment.name == experiment.name
            else {}
        )
        primary = result.primary
        total = sum(result.arms[arm.name]["requests"] for arm in experiment.arms)
        arms = []
        for arm in experiment.arms:
            stats = result.arms[arm.name]
            metric = (stats.get("metrics") or {}).get(primary) if primary else None
            test = (result.tests.get(primary) or {}).get(arm.name) if primary else None
            sequential = (test or {}).get("sequential")
            model = loaded.get(arm.name)
            arms.append(
                {
                    "name": arm.name,
                    "control": arm.name == experiment.control,
                    "weight": arm.weight,
                    "current_weight": current.get(arm.name, arm.weight),
                    "reference": arm.reference,
                    "version": None if model is None else model.version,
                    "requests": stats["requests"],
                    "share": stats["requests"] / total if total else None,
                    "errors": routing.errors.get((experiment.name, arm.name), 0),
                    "latency_p95_ms": stats["latency_p95_ms"],
                    "metric": metric,
                    "sequential": sequential,
                    "guardrails": result.guardrails.get(arm.name, []),
                }
            )
        entry.update(
            primary_metric=primary,
            decision=result.decision,
            winner=result.winner,
            srm=result.srm,
            arms=arms,
            notes=result.notes,
        )
        entries.append(entry)

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, float) and not math.isfinite(value):
            return None
        item = getattr(value, "item", None)
        return item() if item is not None and not isinstance(value, str | bytes) else value

    return clean({"generated": now, "experiments": entries})
