"""Starting and stopping experiments (the definitions the server routes by)."""

from __future__ import annotations

from collections.abc import Mapping

from mlwright.config import default_log_uri
from mlwright.experiment._assignment import parse_arms, parse_ramp
from mlwright.experiment._errors import ExperimentError
from mlwright.experiment._store import Arm, Experiment, ExperimentStore


def _pin(reference: str, tracking_uri: str | None) -> str:
    """``models:/NAME@alias`` -> ``models:/NAME/VERSION`` so the tested version is the one
    promoted, even if the alias moves during the experiment."""
    if not reference.startswith("models:/") or "@" not in reference:
        return reference
    # deferred: mlwright.registry loads scikit-learn (~1.3 s); only a models:/ alias needs it
    from mlwright.registry import get_model

    model, alias = reference[len("models:/") :].split("@", 1)
    info = get_model(model, tracking_uri=tracking_uri)
    if alias not in info.aliases:
        raise ExperimentError(
            f"the registered model {model!r} has no alias {alias!r} (aliases: "
            f"{sorted(info.aliases) or 'none'}). Set it with `mlwright promote {model} VERSION "
            f"--alias {alias}`, or give the arm a reference with --ref {alias}=REFERENCE."
        )
    return f"models:/{model}/{info.aliases[alias]}"


def start_experiment(
    name: str,
    *,
    model: str,
    arms: str | Mapping[str, float] = "champion=0.5,challenger=0.5",
    references: Mapping[str, str] | None = None,
    unit_key: str | None = None,
    shadow: bool = False,
    ramp: str | None = None,
    ramp_every: float = 3600.0,
    metric: str | None = None,
    mde: float | None = None,
    alpha: float = 0.05,
    log: str | None = None,
    tracking_uri: str | None = None,
) -> Experiment:
    """Define and start an experiment; a server serving ``model`` picks it up within seconds.

    Parameters
    ----------
    name
        Experiment name (unique; also the assignment salt).
    model
        The served model name (for a registry model, its registered name).
    arms
        ``"champion=0.5,challenger=0.5"`` or a mapping; the first arm is the control.
    references
        Arm -> model reference; by default arm ``A`` serves ``models:/<model>@A`` (a registry
        alias), pinned now to the version it points at.
    unit_key
        Request field or ``X-Unit-Key`` header value hashed for sticky assignment.
    shadow
        The first arm answers; the others score every request in the background.
    ramp, ramp_every
        Canary: the last arm's shares, e.g. ``"0.05,0.25,0.5"``, each held ``ramp_every``
        seconds.
    metric, mde, alpha
        Primary metric, the effect the sequential test is tuned to, significance level.
    log
        The server's prediction log (default ``<home>/predictions.db``).
    tracking_uri
        MLflow store resolving registry aliases.
    """
    weights = parse_arms(arms) if isinstance(arms, str) else dict(arms)
    if not 0 < alpha < 1:
        raise ExperimentError(f"--alpha must lie strictly between 0 and 1, got {alpha}.")
    if mde is not None and mde <= 0:
        raise ExperimentError(f"--mde must be positive, got {mde}.")
    refs = dict(references or {})
    unknown = sorted(set(refs) - set(weights))
    if unknown:
        raise ExperimentError(
            f"--ref names arms {unknown} that are not in --arms {sorted(weights)}."
        )
    resolved = []
    for arm, weight in weights.items():
        reference = refs.get(arm) or f"models:/{model}@{arm}"
        resolved.append(Arm(name=arm, weight=weight, reference=_pin(reference, tracking_uri)))
    ramp_spec = None
    if ramp:
        if shadow:
            raise ExperimentError(
                "--ramp and --shadow exclude each other: shadow arms see all traffic."
            )
        schedule = parse_ramp(ramp, list(weights)[-1], ramp_every)
        ramp_spec = {"arm": schedule.arm, "steps": list(schedule.steps), "every": schedule.every}
    experiment = Experiment(
        name=name,
        model=model,
        arms=resolved,
        unit_key=unit_key,
        shadow=shadow,
        ramp=ramp_spec,
        metric=metric,
        mde=mde,
        alpha=alpha,
    )
    return ExperimentStore(log or default_log_uri()).create(experiment)


def stop_experiment(name: str, *, log: str | None = None) -> Experiment:
    """Stop routing for an experiment (its data and result stay in the store)."""
    return ExperimentStore(log or default_log_uri()).stop(name)


def get_experiment(name: str, *, log: str | None = None) -> Experiment:
    """The stored definition, state and last result of an experiment."""
    experiment = ExperimentStore(log or default_log_uri()).get(name)
    assert experiment is not None
    return experiment


def record_outcomes(name: str, items: list[Mapping[str, object]], *, log: str | None = None) -> int:
    """Record outcomes (``request_id`` or ``unit``, ``metric``, ``value``) of an experiment."""
    store = ExperimentStore(log or default_log_uri())
    experiment = store.get(name)
    assert experiment is not None
    return store.add_outcomes(experiment, items)
