"""``mlwright experiment plan|start|status|analyze|stop|outcomes``: online A/B tests.

Thin: parse, call :mod:`mlwright.experiment`, render. The library is imported inside the
commands so ``mlwright --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from mlwright.cli._app import app

experiment_app = typer.Typer(
    name="experiment",
    help="Online experiments: plan, start, watch, analyse and stop A/B, canary and shadow tests.",
    no_args_is_help=True,
)
app.add_typer(experiment_app, name="experiment")

_LOG_HELP = "The server's prediction log (default: <home>/predictions.db)."
_TRACKING_HELP = "MLflow tracking/registry URI (default: MLFLOW_TRACKING_URI or the local store)."


def _console() -> Any:
    return Console(highlight=False, soft_wrap=True)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


@experiment_app.command("plan")
def plan_command(
    baseline: float = typer.Option(..., "--baseline", help="Control conversion rate (or mean)."),
    mde: float = typer.Option(..., "--mde", help="Minimum detectable effect (absolute)."),
    alpha: float = typer.Option(0.05, "--alpha", help="Two-sided significance level."),
    power: float = typer.Option(0.8, "--power", help="Probability of detecting the effect."),
    ratio: float = typer.Option(1.0, "--ratio", help="Treatment units per control unit."),
    relative: bool = typer.Option(False, "--relative", help="--mde is a fraction of baseline."),
    std: float | None = typer.Option(None, "--std", help="Per-unit std of a continuous metric."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """How many units each arm needs to detect the effect with the given power."""
    # deferred: mlwright.experiment loads numpy (~0.3 s), not paid by `mlwright --help`
    from mlwright.experiment import plan

    result = plan(baseline, mde, alpha=alpha, power=power, ratio=ratio, relative=relative, std=std)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    console = _console()
    kind = "conversion rate" if result.metric == "proportion" else "mean"
    console.print(
        f"To detect a {kind} moving from {result.baseline:g} to {result.target:g} "
        f"(effect {result.mde:+g}, standardised {result.effect_size:.4f}) with power "
        f"{result.power:g} at alpha {result.alpha:g} (two-sided):"
    )
    console.print(f"  control   {result.n_control:>12,} units")
    console.print(f"  treatment {result.n_treatment:>12,} units")
    console.print(f"  total     {result.total:>12,} units")


@experiment_app.command("start")
def start_command(
    name: str = typer.Argument(..., help="Experiment name (unique)."),
    model: str = typer.Option(..., "--model", help="The served (registered) model name."),
    arms: str = typer.Option(
        "champion=0.5,challenger=0.5", "--arms", help="ARM=WEIGHT pairs; the first is the control."
    ),
    ref: list[str] = typer.Option(
        [], "--ref", help="ARM=REFERENCE (default: models:/MODEL@ARM). Repeatable."
    ),
    unit_key: str | None = typer.Option(
        None, "--unit-key", help="Request field (or X-Unit-Key header) for sticky assignment."
    ),
    shadow: bool = typer.Option(False, "--shadow", help="Caller sees the control; others shadow."),
    ramp: str | None = typer.Option(
        None, "--ramp", help="Canary shares of the last arm, e.g. 0.05,0.25,0.5."
    ),
    ramp_every: float = typer.Option(3600.0, "--ramp-every", help="Seconds per ramp step."),
    metric: str | None = typer.Option(None, "--metric", help="Primary outcome metric."),
    mde: float | None = typer.Option(None, "--mde", help="Effect the sequential test targets."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level."),
    log: str | None = typer.Option(None, "--log", help=_LOG_HELP),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=_TRACKING_HELP),
) -> None:
    """Start an experiment; a running server of the model routes traffic within seconds."""
    # deferred: mlwright.experiment loads numpy (~0.3 s), not paid by `mlwright --help`
    from mlwright.experiment import ExperimentError, start_experiment

    references = {}
    for item in ref:
        arm, sep, reference = item.partition("=")
        if not sep or not arm or not reference:
            raise ExperimentError(f"cannot read --ref {item!r}; write ARM=REFERENCE.")
        references[arm.strip()] = reference.strip()
    experiment = start_experiment(
        name,
        model=model,
        arms=arms,
        references=references,
        unit_key=unit_key,
        shadow=shadow,
        ramp=ramp,
        ramp_every=ramp_every,
        metric=metric,
        mde=mde,
        alpha=alpha,
        log=log,
        tracking_uri=tracking_uri,
    )
    console = _console()
    mode = "shadow" if shadow else ("canary" if ramp else "A/B")
    console.print(f"Started {mode} experiment [bold]{experiment.name}[/] on {experiment.model}:")
    for arm in experiment.arms:
        console.print(f"  {arm.name:<12} weight {arm.weight:.3g}  {arm.reference}")


@experiment_app.command("status")
def status_command(
    name: str = typer.Argument(..., help="Experiment name."),
    log: str | None = typer.Option(None, "--log", help=_LOG_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The experiment's definition, state and last analysis."""
    # deferred: mlwright.experiment loads numpy (~0.3 s), not paid by `mlwright --help`
    from mlwright.experiment import get_experiment

    experiment = get_experiment(name, log=log)
    if as_json:
        typer.echo(json.dumps(experiment.to_dict(), indent=2, default=str))
        return
    console = _console()
    console.print(f"[bold]{experiment.name}[/] on {experiment.model}: {experiment.status}")
    for arm in experiment.arms:
        console.print(f"  {arm.name:<12} weight {arm.weight:.3g}  {arm.reference}")
    if experiment.result:
        console.print(f"Last analysis: {experiment.result.get('decision')}")


def _print_analysis(analysis: Any) -> None:
    console = _console()
    table = Table(title=f"{analysis.experiment.name}: per arm", show_edge=False)
    metrics = list(analysis.tests)
    for column in ("arm", "requests", "p50 ms", "p95 ms", *metrics):
        table.add_column(column)
    for arm, values in analysis.arms.items():
        cells = [
            arm,
            str(values["requests"]),
            _fmt(values["latency_p50_ms"], 3),
            _fmt(values["latency_p95_ms"], 3),
        ]
        cells += [
            f"{_fmt(values['metrics'][m]['mean'])} (n={values['metrics'][m]['n']})" for m in metrics
        ]
        table.add_row(*cells)
    console.print(table)
    for metric, per_arm in analysis.tests.items():
        for arm, entry in per_arm.items():
            seq, fixed = entry["sequential"], entry.get("fixed")
            line = (
                f"{metric} {arm} - {analysis.experiment.control}: {_fmt(seq['difference'])} "
                f"always-valid 95% CS [{_fmt(seq['lower'])}, {_fmt(seq['upper'])}], "
                f"p = {_fmt(seq['p_value'])}"
            )
            if fixed:
                line += (
                    f"; fixed-horizon CI [{_fmt(fixed['lower'])}, {_fmt(fixed['upper'])}], "
                    f"p = {_fmt(fixed['p_value'])}"
                )
            console.print(line)
    if analysis.srm:
        verdict = "[red]MISMATCH[/]" if analysis.srm["mismatch"] else "ok"
        console.print(f"Sample ratio: {verdict} (p = {_fmt(analysis.srm['p_value'])})")
    for arm, checks in analysis.guardrails.items():
        for check in checks:
            state = "ok" if check["ok"] else "[red]FAIL[/]"
            console.print(f"Guardrail {check['name']} ({arm}): {state} - {check['detail']}")
    for note in analysis.notes:
        console.print(f"[dim]note: {note}[/]")
    console.print(f"[bold]Decision: {analysis.decision}[/]")
    if analysis.promoted:
        console.print(f"[bold green]Promoted {analysis.promoted} to champion.[/]")


@experiment_app.command("analyze")
def analyze_command(
    name: str = typer.Argument(..., help="Experiment name."),
    promote_winner: bool = typer.Option(
        False, "--promote-winner", help="Move the champion alias to a significant winner."
    ),
    log: str | None = typer.Option(None, "--log", help=_LOG_HELP),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=_TRACKING_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Per-arm metrics, tests (always-valid and fixed-horizon), SRM, guardrails, decision."""
    # deferred: mlwright.experiment loads numpy (~0.3 s), not paid by `mlwright --help`
    from mlwright.experiment import analyze, default_log_uri

    analysis = analyze(
        name,
        log=log or default_log_uri(),
        promote_winner=promote_winner,
        tracking_uri=tracking_uri,
    )
    if as_json:
        typer.echo(json.dumps(analysis.to_dict(), indent=2))
    else:
        _print_analysis(analysis)


@experiment_app.command("stop")
def stop_command(
    name: str = typer.Argument(..., help="Experiment name."),
    promote_winner: bool = typer.Option(
        False, "--promote-winner", help="Analyse and move the champion alias to a winner."
    ),
    log: str | None = typer.Option(None, "--log", help=_LOG_HELP),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=_TRACKING_HELP),
) -> None:
    """Stop routing (after a final analysis, promoting the winner if asked)."""
    # deferred: mlwright.experiment loads numpy (~0.3 s), not paid by `mlwright --help`
    from mlwright.experiment import analyze, default_log_uri, stop_experiment

    uri = log or default_log_uri()
    stop_experiment(name, log=uri)
    analysis = analyze(name, log=uri, promote_winner=promote_winner, tracking_uri=tracking_uri)
    _print_analysis(analysis)
    _console().print(f"Stopped {name}.")


@experiment_app.command("outcomes")
def outcomes_command(
    name: str = typer.Argument(..., help="Experiment name."),
    file: Path = typer.Argument(
        ..., help="CSV with request_id or unit, metric, value[, timestamp]."
    ),
    metric: str | None = typer.Option(None, "--metric", help="Metric name when the file has none."),
    log: str | None = typer.Option(None, "--log", help=_LOG_HELP),
) -> None:
    """Import outcomes (conversions, revenue, labels) from a CSV file."""
    # deferred: mlwright.data loads pandas and DuckDB (~0.5 s), not paid by `mlwright --help`
    from mlwright.data import read

    # deferred: mlwright.experiment loads numpy (~0.3 s), not paid by `mlwright --help`
    from mlwright.experiment import ExperimentError, record_outcomes

    frame = read(str(file))
    if "request_id" not in frame.columns and "unit" not in frame.columns:
        raise ExperimentError(
            f"{file} has neither a request_id nor a unit column (columns: {list(frame.columns)}); "
            "add one so each outcome can be credited to its arm."
        )
    if "value" not in frame.columns:
        raise ExperimentError(f"{file} has no 'value' column (columns: {list(frame.columns)}).")
    if "metric" not in frame.columns:
        if not metric:
            raise ExperimentError(f"{file} has no 'metric' column; add one or pass --metric NAME.")
        frame = frame.assign(metric=metric)
    items = frame.astype(object).where(frame.notna(), None).to_dict("records")
    count = record_outcomes(name, items, log=log)
    _console().print(f"Recorded {count} outcomes for {name}.")
