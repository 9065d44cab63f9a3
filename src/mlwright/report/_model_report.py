"""The model report: a model card (Mitchell et al., 2019) as one self-contained HTML file and
as Markdown.

Sections: model details, intended use, training data (profile and quality findings),
training and validation (leaderboard), evaluation on test data (metrics with confidence
intervals, ROC / PR / confusion / calibration or residual plots), explanations (permutation and
native importance, partial dependence), slices and fairness, limitations. Without test data
the evaluation sections say so and the report is built from what the artifact records.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from mlwright import __version__
from mlwright._files import write_text_atomically
from mlwright.report import _model_plots as plots
from mlwright.report._profile_page import _environment, _number

__all__ = [
    "model_report_context",
    "model_report_html",
    "model_report_markdown",
    "write_model_report",
]

_TOP_DEPENDENCE = 4
_DESCRIPTIONS = {
    "roc_auc": "area under the ROC curve: chance that a positive ranks above a negative",
    "pr_auc": "average precision over all thresholds",
    "accuracy": "share of rows predicted correctly",
    "balanced_accuracy": "mean recall over the classes",
    "precision": "share of predicted positives that are positive",
    "recall": "share of positives found",
    "f1": "harmonic mean of precision and recall",
    "f1_macro": "F1 averaged over classes",
    "f1_weighted": "F1 averaged over classes, weighted by their size",
    "precision_macro": "precision averaged over classes",
    "recall_macro": "recall averaged over classes",
    "precision_weighted": "precision averaged over classes, weighted by size",
    "recall_weighted": "recall averaged over classes, weighted by size",
    "mcc": "Matthews correlation: -1 to 1, 0 is chance",
    "log_loss": "cross-entropy of the probabilities (lower is better)",
    "brier": "mean squared error of the probabilities (lower is better)",
    "rmse": "root mean squared error (lower is better)",
    "mae": "mean absolute error (lower is better)",
    "r2": "share of the target's variance explained",
    "mape": "mean absolute percentage error (lower is better)",
}


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _members(model: Any) -> list[dict[str, Any]]:
    # deferred: mlwright.evaluate loads scikit-learn (~1.6 s), unused by `mlwright profile`
    from mlwright.evaluate._explain import base_predictor

    predictor = base_predictor(model.predictor)
    members = getattr(predictor, "members", None) or []
    return [
        {"name": member.name, "family": member.family, "weight": float(member.weight)}
        for member in members
    ]


def model_report_context(
    model: Any,
    *,
    data: Any = None,
    sensitive: list[str] | tuple[str, ...] = (),
    n_resamples: int = 1000,
    seed: int = 0,
    reference: str | None = None,
) -> dict[str, Any]:
    """Everything the report shows, as plain data plus embedded plot URIs.

    Parameters
    ----------
    model
        A :class:`mlwright.Model`.
    data
        Labelled test rows (DataFrame or path); without them only recorded facts are shown.
    sensitive
        Columns for slices and fairness.
    n_resamples, seed
        Bootstrap settings.
    reference
        How the model was named on the command line (shown in the details).
    """
    # deferred: mlwright.evaluate loads scikit-learn (~1.6 s), unused by `mlwright profile`
    from mlwright.evaluate import (
        evaluate,
        native_importance,
        partial_dependence,
        permutation_importance,
    )

    # deferred: mlwright.evaluate loads scikit-learn (~1.6 s), unused by `mlwright profile`
    from mlwright.evaluate._evaluation import model_rows

    started = time.perf_counter()
    lineage = model.lineage or {}
    metrics = model.metrics or {}
    info = model.info or {}
    context: dict[str, Any] = {
        "title": f"Model report: {model.target}",
        "generated_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "mlwright_version": __version__,
        "details": {
            "reference": reference or (str(model.path) if model.path else "(in memory)"),
            "task": model.task,
            "target": model.target,
            "classes": model.classes,
            "metric": metrics.get("metric"),
            "validation_score": _clean(metrics.get("validation_score")),
            "validation_std": _clean(metrics.get("validation_std")),
            "n_folds": metrics.get("n_folds"),
            "created_at": lineage.get("created_at"),
            "seconds_taken": lineage.get("seconds_taken"),
            "seed": lineage.get("seed"),
            "versions": lineage.get("versions") or {},
            "members": _members(model),
            "n_features": len(model.feature_names),
            "decision_threshold": info.get("decision_threshold"),
            "calibration": info.get("calibration"),
        },
        "training_data": {
            **(lineage.get("data") or {}),
            "dropped_columns": info.get("dropped_columns") or [],
            "feature_names": model.feature_names,
        },
        "findings": list(getattr(model, "findings", None) or []),
        "leaderboard": [
            {**row, "score": _clean(row.get("score")), "std": _clean(row.get("std"))}
            for row in metrics.get("leaderboard") or []
        ],
        "evaluation": None,
        "plots": {},
        "native_importance": None,
        "permutation_importance": None,
        "dependence": [],
        "limitations": [],
        "has_data": data is not None,
        "sensitive": list(sensitive),
    }
    native = native_importance(model)
    if native:
        context["native_importance"] = native
        context["plots"]["native_importance"] = plots.importance_plot(
            native, "Native importance (split gain share)", "share of total gain"
        )
    if data is not None:
        frame, y_true, _ = model_rows(model, data)
        evaluation = evaluate(
            model, frame, sensitive=list(sensitive), n_resamples=n_resamples, seed=seed
        )
        document = evaluation.to_dict()
        document["settings"]["source"] = str(data) if not hasattr(data, "columns") else "DataFrame"
        document["metric_rows"] = [
            {
                "name": name,
                **interval,
                "description": _DESCRIPTIONS.get(name, ""),
                "primary": name == evaluation.metric,
            }
            for name, interval in document["metrics"].items()
        ]
        context["evaluation"] = document
        _evaluation_plots(context, evaluation, plots)
        features = frame.drop(columns=[model.target])
        importance = permutation_importance(model, features, y_true, seed=seed)
        context["permutation_importance"] = importance
        context["plots"]["permutation_importance"] = plots.importance_plot(
            importance,
            f"Permutation importance (drop in {evaluation.metric})",
            f"drop in {evaluation.metric} when shuffled",
        )
        top = [row["column"] for row in importance[:_TOP_DEPENDENCE] if row["importance"] > 0]
        if not top and native:
            top = [row["column"] for row in native[:_TOP_DEPENDENCE]]
        for dependence in partial_dependence(model, features, top, seed=seed):
            context["dependence"].append(
                {**dependence, "plot": plots.dependence_plot(dependence, model.classes)}
            )
    context["limitations"] = _limitations(context)
    context["intended_use"] = _intended_use(context)
    context["seconds"] = time.perf_counter() - started
    return context


def _evaluation_plots(context: dict[str, Any], evaluation: Any, plots: Any) -> None:
    figures = context["plots"]
    values = {name: interval.value for name, interval in evaluation.metrics.items()}
    curves = evaluation.curves
    if "roc" in curves:
        figures["roc"] = plots.roc_plot(curves["roc"], _clean(values.get("roc_auc")))
    if "pr" in curves:
        figures["pr"] = plots.pr_plot(curves["pr"], _clean(values.get("pr_auc")))
    if evaluation.confusion is not None:
        figures["confusion"] = plots.confusion_plot(evaluation.confusion)
    if evaluation.calibration is not None:
        figures["calibration"] = plots.calibration_plot(
            evaluation.calibration["curve"], evaluation.calibration["ece"]
        )
    if "residuals" in curves:
        figures["residuals"], figures["residual_histogram"] = plots.residual_plots(
            curves["residuals"]
        )


def _limitations(context: dict[str, Any]) -> list[str]:
    """Plain statements of what the numbers do not support, derived from the numbers."""
    notes: list[str] = []
    details = context["details"]
    evaluation = context["evaluation"]
    training = context["training_data"]
    if evaluation is None:
        notes.append(
            "No test data was given, so this report shows cross-validation scores only. "
            "Run `mlwright report MODEL --data TEST` with held-out labelled rows for metrics "
            "with confidence intervals, plots, slices and fairness."
        )
    else:
        primary = evaluation["metrics"].get(evaluation["metric"], {})
        if primary.get("lower") is not None and primary.get("upper") is not None:
            width = primary["upper"] - primary["lower"]
            notes.append(
                f"The test set has {evaluation['n_rows']:,} rows: {evaluation['metric']} is "
                f"known to within a 95% interval {width:.3g} wide "
                f"([{primary['lower']:.4g}, {primary['upper']:.4g}]). Differences smaller than "
                "that between models are not established by this test set alone."
            )
        calibration = evaluation.get("calibration")
        if calibration and calibration["ece"] > 0.05:
            notes.append(
                f"Probabilities are not well calibrated (ECE {calibration['ece']:.3f}): treat "
                "them as scores, or recalibrate with `mlwright evaluate MODEL HELD_OUT "
                "--calibrate isotonic`."
            )
        notes.extend(evaluation.get("warnings") or [])
        bad = [
            row
            for row in evaluation.get("slices") or []
            if not row["small"]
            and row["value_interval"].get("upper") is not None
            and _worse_than(row, primary, evaluation)
        ]
        for row in bad[:3]:
            notes.append(
                f"Performance is clearly lower for {row['column']} = {row['value']} "
                f"({row['metric']} {row['value_interval']['value']:.4g} vs "
                f"{primary['value']:.4g} overall; its 95% interval excludes the overall value)."
            )
        small = [row for row in evaluation.get("slices") or [] if row["small"]]
        if small:
            notes.append(
                f"{len(small)} slice(s) have under 30 test rows; their figures are too uncertain "
                "to judge the model on those groups."
            )
    dropped = training.get("dropped_columns") or []
    if dropped:
        notes.append(
            "Columns not used by the model: "
            + "; ".join(f"{item['column']} ({item['reason']})" for item in dropped[:8])
            + "."
        )
    if training.get("n_rows"):
        notes.append(
            f"Trained on {training['n_rows']:,} rows of {training.get('source', 'the data')}; "
            "inputs outside the ranges and categories seen there are extrapolation, and the "
            "schema check at prediction time flags values it cannot accept."
        )
    if details.get("decision_threshold"):
        threshold = details["decision_threshold"]
        notes.append(
            f"Decisions use threshold {threshold['threshold']:.4g} (chosen for "
            f"{threshold['objective']} on {threshold['n_rows']} rows), not 0.5."
        )
    return notes


def _worse_than(row: dict[str, Any], primary: dict[str, Any], evaluation: dict[str, Any]) -> bool:
    # deferred: mlwright.evaluate loads scikit-learn (~1.6 s), unused by `mlwright profile`
    from mlwright.evaluate._metrics import greater_is_better

    interval = row["value_interval"]
    overall = primary.get("value")
    if overall is None:
        return False
    if greater_is_better(row["metric"], evaluation["task"]):
        return interval["upper"] < overall
    return interval["lower"] > overall


def model_report_html(context: dict[str, Any]) -> str:
    """Render the report context as one self-contained HTML document."""

    return _environment().get_template("model_report.html.j2").render(**context)


def _md_number(value: Any) -> str:

    return _number(value)


def _md_escape(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(_md_escape(cell) for cell in row) + " |")
    return lines + [""]


def model_report_markdown(context: dict[str, Any]) -> str:
    """The same report as Markdown (tables, no images), for repositories and reviews."""
    details = context["details"]
    training = context["training_data"]
    evaluation = context["evaluation"]
    n = _md_number
    lines = [
        f"# {context['title']}",
        "",
        f"Generated {context['generated_at']} by mlwright {context['mlwright_version']}.",
        "",
        "## Model details",
        "",
    ]
    members = (
        ", ".join(
            f"{m['name']} ({m['family']}, weight {m['weight']:.2f})" for m in details["members"]
        )
        or "–"
    )
    lines += _md_table(
        ["field", "value"],
        [
            ["model", details["reference"]],
            ["task", details["task"]],
            ["target", details["target"]],
            ["classes", ", ".join(map(str, details["classes"] or [])) or "–"],
            ["training metric", details["metric"]],
            [
                "cross-validation score",
                f"{n(details['validation_score'])} ± {n(details['validation_std'])} "
                f"({details['n_folds']} folds)",
            ],
            ["ensemble", members],
            ["input columns", details["n_features"]],
            ["trained", details["created_at"] or "–"],
        ],
    )
    lines += ["## Intended use", "", _intended_use(context), ""]
    lines += ["## Training data", ""]
    lines += _md_table(
        ["field", "value"],
        [
            ["source", training.get("source", "–")],
            ["rows", n(training.get("n_rows"))],
            ["columns", n(training.get("n_columns"))],
            ["fingerprint", training.get("fingerprint", "–")],
        ],
    )
    if context["findings"]:
        lines += ["### Quality findings", ""]
        lines += _md_table(
            ["severity", "kind", "columns", "finding"],
            [
                [
                    f.get("severity"),
                    f.get("kind"),
                    ", ".join(map(str, f.get("columns", [])[:5])),
                    f.get("message"),
                ]
                for f in context["findings"]
            ],
        )
    if context["leaderboard"]:
        lines += ["## Training and validation (leaderboard)", ""]
        lines += _md_table(
            ["model", "family", "score", "std", "ensemble weight"],
            [
                [
                    row.get("model"),
                    row.get("family"),
                    n(row.get("score")),
                    n(row.get("std")),
                    n(row.get("weight")),
                ]
                for row in context["leaderboard"]
            ],
        )
    lines += ["## Evaluation on test data", ""]
    if evaluation is None:
        lines += ["No test data was given.", ""]
    else:
        lines += [
            f"{evaluation['n_rows']:,} rows of {evaluation['settings']['source']}; 95% "
            f"bootstrap intervals from {evaluation['settings']['n_resamples']} resamples.",
            "",
        ]
        lines += _md_table(
            ["metric", "value", "95% interval", "meaning"],
            [
                [
                    row["name"] + (" (primary)" if row["primary"] else ""),
                    n(row["value"]),
                    f"[{n(row['lower'])}, {n(row['upper'])}]",
                    row["description"],
                ]
                for row in evaluation["metric_rows"]
            ],
        )
        if evaluation["per_class"]:
            lines += _md_table(
                ["class", "support", "precision", "recall", "F1"],
                [
                    [
                        row["class"],
                        row["support"],
                        *(n(row[k]["value"]) for k in ("precision", "recall", "f1")),
                    ]
                    for row in evaluation["per_class"]
                ],
            )
        if evaluation["calibration"]:
            lines += [f"Expected calibration error: {n(evaluation['calibration']['ece'])}.", ""]
        if evaluation["residuals"]:
            lines += _md_table(
                list(evaluation["residuals"]), [[n(v) for v in evaluation["residuals"].values()]]
            )
    if context["permutation_importance"]:
        lines += ["## Explanations", "", "Permutation importance (test rows):", ""]
        lines += _md_table(
            ["column", "importance", "std"],
            [
                [row["column"], n(row["importance"]), n(row["std"])]
                for row in context["permutation_importance"][:15]
            ],
        )
    if evaluation is not None and evaluation["slices"]:
        lines += ["## Slices (worst first)", ""]
        lines += _md_table(
            ["column", "value", "rows", evaluation["metric"], "95% interval"],
            [
                [
                    row["column"],
                    row["value"] + (" (small)" if row["small"] else ""),
                    row["n_rows"],
                    n(row["value_interval"]["value"]),
                    f"[{n(row['value_interval']['lower'])}, {n(row['value_interval']['upper'])}]",
                ]
                for row in evaluation["slices"][:20]
            ],
        )
    if evaluation is not None and evaluation["fairness"]:
        lines += ["## Fairness", ""]
        for fairness in evaluation["fairness"]:
            lines += [f"### {fairness['column']}", ""]
            lines += _md_table(
                ["group", "rows", "selection rate", "TPR", "FPR", fairness["metric"]],
                [
                    [
                        g["group"],
                        g["n_rows"],
                        n(g["selection_rate"]),
                        n(g["tpr"]),
                        n(g["fpr"]),
                        n(g["metric"]),
                    ]
                    for g in fairness["groups"]
                ],
            )
            if fairness["demographic_parity_difference"] is not None:
                lines += [
                    f"Demographic parity difference {n(fairness['demographic_parity_difference'])}"
                    f", ratio {n(fairness['demographic_parity_ratio'])}; equalized odds "
                    f"difference {n(fairness['equalized_odds_difference'])}.",
                    "",
                ]
    lines += ["## Limitations", ""]
    lines += [f"- {note}" for note in context["limitations"]] + [""]
    return "\n".join(lines)


def _intended_use(context: dict[str, Any]) -> str:
    details = context["details"]
    training = context["training_data"]
    what = {
        "binary": "classifies each row into one of two classes",
        "multiclass": "classifies each row into one of several classes",
        "regression": "predicts a number for each row",
    }[details["task"]]
    return (
        f"This model {what}: '{details['target']}' from {details['n_features']} input columns, "
        f"for rows like those of {training.get('source', 'its training data')}. Use it to "
        "support decisions on such rows, with the intervals and limitations below in mind; "
        "not for populations or periods the training data does not cover, and not as the "
        "sole basis of decisions about individuals where the fairness section shows gaps."
    )


def write_model_report(
    model: Any,
    output: str | Path,
    *,
    data: Any = None,
    sensitive: list[str] | tuple[str, ...] = (),
    markdown: str | Path | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    reference: str | None = None,
) -> dict[str, Path]:
    """Write the model report as HTML (``output``) and Markdown.

    Parameters
    ----------
    model
        A :class:`mlwright.Model`.
    output
        The HTML file to write (parents are created).
    data, sensitive, n_resamples, seed, reference
        As for :func:`model_report_context`.
    markdown
        The Markdown file (default: ``output`` with the suffix ``.md``).

    Returns
    -------
    dict
        ``{"html": Path, "markdown": Path}``.
    """
    context = model_report_context(
        model,
        data=data,
        sensitive=sensitive,
        n_resamples=n_resamples,
        seed=seed,
        reference=reference,
    )
    html_path = Path(output)
    markdown_path = Path(markdown) if markdown is not None else html_path.with_suffix(".md")
    write_text_atomically(html_path, model_report_html(context), "the model report")
    write_text_atomically(markdown_path, model_report_markdown(context), "the model report")
    return {"html": html_path, "markdown": markdown_path}


#: Seconds a report without test data takes on a busy 2-core machine (matplotlib's import,
#: one plot, the template), with margin.
_ATTACH_SECONDS = 4.0
REPORT_FILE = "report.html"


def attach_model_report(model: Any, *, finish_by: float | None = None) -> Path | None:
    """Write the model report (from what the artifact records) into a saved model's directory.

    ``mlwright train`` calls this, so every artifact carries its model card as
    ``report.html`` and ``report.md`` (listed in its MANIFEST, logged to MLflow with it). Run
    ``mlwright report MODEL --data TEST`` for the version with test metrics.

    Parameters
    ----------
    model
        A saved :class:`mlwright.Model` (``model.path`` set).
    finish_by
        A ``time.monotonic()`` deadline; when the report could not be written before it, it is
        skipped (a training run's time budget comes first) and ``None`` returned.

    Returns
    -------
    pathlib.Path or None
        The ``report.html`` inside the artifact, or ``None`` when skipped.
    """
    if model.path is None:
        return None
    if finish_by is not None and time.monotonic() + _ATTACH_SECONDS > finish_by:
        return None
    context = model_report_context(model, reference=str(model.path))
    files = {
        REPORT_FILE: model_report_html(context).encode("utf-8"),
        "report.md": model_report_markdown(context).encode("utf-8"),
    }
    model.save(model.path, overwrite=True, extra_files=files)
    return Path(model.path) / REPORT_FILE
