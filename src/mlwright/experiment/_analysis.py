"""Reading an experiment: per-arm metrics, tests, guardrails, the decision and promotion.

The decision uses the always-valid sequential test (mSPRT) on the primary metric, so an
experiment can be analysed every hour without inflating false positives; the fixed-horizon
test (z-test or Welch) is reported beside it for the record. A winner is declared only when
the sample ratio matches the weights (SRM) and the guardrails hold (the treatment's p95 latency
within a factor of the control's, its error rate not significantly higher).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlwright.experiment._errors import ExperimentError
from mlwright.experiment._sequential import sequential_test
from mlwright.experiment._stats import proportion_test, srm_check, welch_test
from mlwright.experiment._store import Experiment, ExperimentStore

#: The treatment's p95 latency may exceed the control's by this factor before it fails.
LATENCY_TOLERANCE = 1.5


@dataclass
class Analysis:
    """Everything ``mlwright experiment analyze`` reports.

    Attributes
    ----------
    experiment
        The definition.
    arms
        Per arm: ``requests``, ``latency_p50_ms``, ``latency_p95_ms``, ``labelled``,
        ``accuracy`` (from feedback), and ``metrics``: per outcome metric ``{n, mean, lower,
        upper}`` (the mean's interval at ``1 - alpha``: Wilson for rates, t otherwise).
    tests
        Per metric and treatment arm: ``{"fixed": TestResult dict, "sequential": dict}``.
    srm
        The sample-ratio-mismatch check on requests per arm.
    guardrails
        Per treatment arm: list of ``{name, ok, detail}``.
    decision
        ``"<arm> wins"``, ``"<control> wins"`` (treatment significantly worse), ``"no
        difference yet"``, ``"stopped: ..."``.
    winner
        The winning arm, or ``None``.
    promoted
        The version made champion by ``--promote-winner``, or ``None``.
    """

    experiment: Experiment
    arms: dict[str, dict[str, Any]]
    tests: dict[str, dict[str, Any]]
    srm: dict[str, Any] | None
    guardrails: dict[str, list[dict[str, Any]]]
    primary: str | None
    decision: str
    winner: str | None = None
    promoted: str | None = None
    notes: list[str] = field(default_factory=list)
    mlflow_run: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form."""
        return _clean(
            {
                "experiment": self.experiment.to_dict() | {"result": None},
                "arms": self.arms,
                "tests": self.tests,
                "srm": self.srm,
                "guardrails": self.guardrails,
                "primary_metric": self.primary,
                "decision": self.decision,
                "winner": self.winner,
                "promoted": self.promoted,
                "notes": self.notes,
                "mlflow_run": self.mlflow_run,
                "analysed": time.time(),
            }
        )


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _per_unit(rows: list[tuple[Any, ...]], metric: str) -> tuple[list[str], np.ndarray]:
    """One value per unit (request or unit key) in first-seen order: outcomes are summed."""
    values: dict[tuple[str, str], float] = {}
    for request_id, unit, arm, name, value, _stamp in rows:
        if name != metric or arm is None:
            continue
        key = (arm, unit or request_id)
        values[key] = values.get(key, 0.0) + float(value)
    arms = [key[0] for key in values]
    return arms, np.fromiter(values.values(), dtype=float, count=len(values))


def analyze(
    name: str,
    *,
    log: str,
    promote_winner: bool = False,
    tracking_uri: str | None = None,
    record: bool = True,
    save: bool = True,
) -> Analysis:
    """Analyse an experiment from its outcomes and logged predictions.

    Parameters
    ----------
    name
        The experiment.
    log
        The prediction log URI holding the experiment (``sqlite:///...``).
    promote_winner
        When a treatment arm wins with the guardrails holding, move the registered model's
        ``champion`` alias to that arm's version (arms must reference registry versions).
    tracking_uri
        MLflow store for the record of the analysis and the promotion.
    record
        Log the analysis to MLflow (experiment ``mlwright-experiments``).
    save
        Keep the result with the experiment (``status`` shows it); the server's dashboard
        reads without saving.

    Returns
    -------
    Analysis
    """
    store = ExperimentStore(log)
    experiment = store.get(name)
    assert experiment is not None
    control = experiment.control
    treatments = [a.name for a in experiment.arms if a.name != control]
    notes: list[str] = []

    # Requests, latency and labelled accuracy per arm from the prediction log.
    logged = store.predictions(experiment)
    arms: dict[str, dict[str, Any]] = {a.name: {} for a in experiment.arms}
    latencies: dict[str, list[float]] = {a: [] for a in arms}
    requests: dict[str, set[str]] = {a: set() for a in arms}
    correct: dict[str, list[float]] = {a: [] for a in arms}
    for request_id, arm, latency, prediction, actual in logged:
        key = arm[len("shadow:") :] if arm.startswith("shadow:") else arm
        if key not in arms:
            continue
        if request_id not in requests[key]:
            requests[key].add(request_id)
            latencies[key].append(float(latency))
        if actual is not None:
            correct[key].append(float(json.loads(prediction) == json.loads(actual)))
    for arm in arms:
        lat = np.asarray(latencies[arm])
        arms[arm].update(
            requests=len(requests[arm]),
            latency_p50_ms=float(np.percentile(lat, 50)) if lat.size else None,
            latency_p95_ms=float(np.percentile(lat, 95)) if lat.size else None,
            labelled=len(correct[arm]),
            accuracy=float(np.mean(correct[arm])) if correct[arm] else None,
        )

    # Outcome metrics per arm.
    rows = store.outcomes(experiment)
    # Failed requests are recorded as outcomes of the metric "error" (the server does so when
    # an arm raises); they feed the error-rate guardrail, not the tests.
    errors: dict[str, int] = {}
    for row in rows:
        if row[3] == "error" and row[2] is not None and row[4]:
            errors[row[2]] = errors.get(row[2], 0) + 1
    rows = [row for row in rows if row[3] != "error"]
    metric_names = list(dict.fromkeys(r[3] for r in rows))
    unresolved = sum(1 for r in rows if r[2] is None)
    if unresolved:
        notes.append(f"{unresolved} outcomes name requests not found in the log; left out.")
    primary = experiment.metric or next(iter(metric_names), None)
    if primary is None and any(arms[a]["labelled"] for a in arms):
        primary = "accuracy"
    tests: dict[str, dict[str, Any]] = {}
    streams: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for metric in metric_names:
        unit_arms, values = _per_unit(rows, metric)
        streams[metric] = (np.asarray(unit_arms, dtype=object), values)
    if "accuracy" not in streams and any(correct.values()):
        arm_list = [a for a in arms for _ in correct[a]]
        streams["accuracy"] = (
            np.asarray(arm_list, dtype=object),
            np.asarray([v for a in arms for v in correct[a]], dtype=float),
        )
        notes.append(
            "accuracy is tested on labelled predictions grouped by arm (feedback rows are "
            "not time-ordered across arms, so its sequential test uses log order)"
        )
    for metric, (unit_arms, values) in streams.items():
        binary = bool(values.size) and bool(np.isin(values, (0.0, 1.0)).all())
        for arm in arms:
            sel = values[unit_arms == arm]
            lower, upper = _mean_interval(sel, binary, experiment.alpha)
            arms[arm].setdefault("metrics", {})[metric] = {
                "n": int(sel.size),
                "mean": float(sel.mean()) if sel.size else None,
                "lower": lower,
                "upper": upper,
            }
        tests[metric] = {}
        for arm in treatments:
            a, b = values[unit_arms == control], values[unit_arms == arm]
            entry: dict[str, Any] = {}
            try:
                if binary:
                    fixed = proportion_test(
                        int(a.sum()), a.size, int(b.sum()), b.size, alpha=experiment.alpha
                    )
                else:
                    fixed = welch_test(a, b, alpha=experiment.alpha)
                entry["fixed"] = fixed.to_dict()
            except ExperimentError as err:
                entry["fixed"] = None
                notes.append(f"{metric}, {arm}: {err}")
            mask = (unit_arms == control) | (unit_arms == arm)
            tau = experiment.mde if experiment.mde and metric == primary else None
            sequential = sequential_test(
                unit_arms[mask] == arm,
                values[mask],
                tau=tau,
                alpha=experiment.alpha,
                min_samples=min(100, max(2, int(min(a.size, b.size))))
                if a.size and b.size
                else 100,
            )
            entry["sequential"] = sequential.to_dict()
            tests[metric][arm] = entry

    # Sample ratio: requests per arm against the weights (shadow arms see every request).
    srm = None
    if not experiment.shadow and not experiment.ramp:
        counts = {a: arms[a]["requests"] for a in arms}
        if sum(counts.values()):
            srm = srm_check(counts, experiment.weights).to_dict()
    elif experiment.ramp:
        notes.append("the weights changed during the canary ramp, so the SRM check is skipped")

    guardrails: dict[str, list[dict[str, Any]]] = {}
    for arm in treatments:
        checks = []
        base, new = arms[control]["latency_p95_ms"], arms[arm]["latency_p95_ms"]
        if base is not None and new is not None:
            ok = new <= LATENCY_TOLERANCE * max(base, 1.0)
            checks.append(
                {
                    "name": "latency_p95",
                    "ok": ok,
                    "detail": f"{new:.2f} ms vs {base:.2f} ms (limit x{LATENCY_TOLERANCE})",
                }
            )
        total = errors.get(control, 0) + arms[control]["requests"]
        total_arm = errors.get(arm, 0) + arms[arm]["requests"]
        if errors and total and total_arm:
            result = proportion_test(
                errors.get(control, 0), total, errors.get(arm, 0), total_arm, alpha=experiment.alpha
            )
            checks.append(
                {
                    "name": "error_rate",
                    # A significantly higher error rate stops the arm.
                    "ok": not (result.significant and result.difference > 0),
                    "detail": f"{result.treatment:.4f} vs {result.control:.4f} "
                    f"(difference interval [{result.lower:.4f}, {result.upper:.4f}])",
                }
            )
        guardrails[arm] = checks

    decision, winner = "no difference yet", None
    if srm is not None and srm["mismatch"]:
        decision = "stopped: sample ratio mismatch (the split does not match the weights)"
    elif primary is None or primary not in tests:
        decision = "no outcomes yet"
    else:
        best = None
        for arm in treatments:
            seq = tests[primary][arm]["sequential"]
            failed = [g["name"] for g in guardrails[arm] if not g["ok"]]
            if failed:
                decision = f"stopped: {arm} fails the guardrail(s) {', '.join(failed)}"
                continue
            if seq["significant"] and seq["difference"] is not None:
                if seq["difference"] > 0 and (best is None or seq["difference"] > best[1]):
                    best = (arm, seq["difference"])
                elif seq["difference"] < 0 and best is None:
                    decision, winner = f"{control} wins", control
        if best is not None:
            decision, winner = f"{best[0]} wins", best[0]
    analysis = Analysis(
        experiment=experiment,
        arms=arms,
        tests=tests,
        srm=srm,
        guardrails=guardrails,
        primary=primary,
        decision=decision,
        winner=winner,
        notes=notes,
    )
    if promote_winner:
        analysis.promoted = _promote(experiment, winner, tracking_uri)
    if record:
        analysis.mlflow_run = _record(analysis, tracking_uri)
    if save:
        store.save_result(name, analysis.to_dict())
    return analysis


def _mean_interval(values: np.ndarray, binary: bool, alpha: float) -> tuple[Any, Any]:
    """Confidence interval of one arm's mean: Wilson for a rate, Student's t otherwise."""
    if values.size < 2:
        return None, None
    if binary:
        # deferred: statsmodels (~0.45 s) is only for the statistics, not `experiment start`
        from statsmodels.stats.proportion import proportion_confint

        low, high = proportion_confint(int(values.sum()), values.size, alpha=alpha, method="wilson")
        return float(low), float(high)
    # deferred: scipy.stats (~1.2 s) is only for the statistics, not `experiment start`
    from scipy import stats

    spread = float(values.std(ddof=1)) / math.sqrt(values.size)
    half = float(stats.t.ppf(1 - alpha / 2, values.size - 1)) * spread
    mean = float(values.mean())
    return mean - half, mean + half


def _registry_version(reference: str, tracking_uri: str | None) -> tuple[str, str]:
    """``(registered name, version)`` of a ``models:/NAME@alias`` or ``models:/NAME/V``."""
    # deferred: mlwright.registry loads scikit-learn (~1.3 s); only --promote-winner needs it
    from mlwright.registry import get_model

    if not reference.startswith("models:/"):
        raise ExperimentError(
            f"--promote-winner moves a registry alias, but the winning arm serves {reference!r}, "
            "which is not a registry model; start the experiment on a registered model."
        )
    rest = reference[len("models:/") :]
    if "@" in rest:
        model, alias = rest.split("@", 1)
        info = get_model(model, tracking_uri=tracking_uri)
        aliases = getattr(info, "aliases", {}) or {}
        if alias not in aliases:
            raise ExperimentError(f"the model {model!r} has no alias {alias!r} any more.")
        return model, str(aliases[alias])
    model, _, version = rest.partition("/")
    return model, version


def _promote(experiment: Experiment, winner: str | None, tracking_uri: str | None) -> str | None:
    # deferred: mlwright.registry loads scikit-learn (~1.3 s); only --promote-winner needs it
    from mlwright.registry import promote

    if winner is None or winner == experiment.control:
        return None
    model, version = _registry_version(experiment.arm(winner).reference, tracking_uri)
    promote(model, version, alias="champion", tracking_uri=tracking_uri)
    return f"{model}/{version}"


def _record(analysis: Analysis, tracking_uri: str | None) -> str | None:
    """Log the analysis as an MLflow run of the experiment ``mlwright-experiments``."""
    # deferred: mlwright.registry loads scikit-learn (~1.3 s); only recording to MLflow needs it
    from mlwright.registry import open_store

    # deferred: mlwright.registry loads scikit-learn (~1.3 s); only recording to MLflow needs it
    from mlwright.registry._store import quiet_mlflow

    store = open_store(tracking_uri)
    experiment_id = store.experiment_id("mlwright-experiments")
    exp = analysis.experiment
    with quiet_mlflow():
        client = store.client
        run = client.create_run(
            experiment_id,
            run_name=f"{exp.name}-analysis",
            tags={"mlwright.experiment": exp.name, "mlwright.model": exp.model},
        )
        run_id = run.info.run_id
        params = {
            "model": exp.model,
            "arms": ",".join(f"{a.name}={a.weight:g}" for a in exp.arms),
            "references": ",".join(f"{a.name}={a.reference}" for a in exp.arms),
            "unit_key": str(exp.unit_key),
            "shadow": str(exp.shadow),
            "alpha": str(exp.alpha),
            "primary_metric": str(analysis.primary),
        }
        for key, value in params.items():
            client.log_param(run_id, key, value[:500])
        for arm, values in analysis.arms.items():
            for key in ("requests", "latency_p50_ms", "latency_p95_ms", "accuracy"):
                if isinstance(values.get(key), int | float):
                    client.log_metric(run_id, f"{arm}.{key}", float(values[key]))
        for metric, per_arm in analysis.tests.items():
            for arm, entry in per_arm.items():
                seq = entry["sequential"]
                if seq.get("difference") is not None:
                    client.log_metric(run_id, f"{metric}.{arm}.difference", seq["difference"])
                client.log_metric(run_id, f"{metric}.{arm}.always_valid_p", seq["p_value"])
        client.set_tag(run_id, "mlwright.decision", analysis.decision)
        if analysis.promoted:
            client.set_tag(run_id, "mlwright.promoted", analysis.promoted)
        client.log_dict(run_id, analysis.to_dict(), "experiment_analysis.json")
        client.set_terminated(run_id)
    return run_id
