"""AutoML benchmark: mlwright against FLAML and AutoGluon on the shared suite, side by side.

Usage::

    python benchmarks/automl.py SUITE_DIR [--time-limit 60] [--datasets a,b]
        [--systems mlwright,flaml] [--autogluon-python AGVENV/bin/python]
        [--autogluon-presets medium_quality,best_quality] [--output FILE] [--no-results]
        [--merge PREVIOUS.json]

For each dataset, mlwright runs as a user runs it: ``mlwright train train.csv --target T
--time-limit 60`` in a subprocess (wall time and peak RSS of the whole command), then
``mlwright predict`` on test.csv; FLAML (``flaml.AutoML().fit(..., time_budget, n_jobs=2)``)
runs in its own subprocess on the same files. Scores use the suite's metric with scikit-learn
(ROC AUC with the second label in string order as positive; log loss clipped at 1e-15 and
renormalised; RMSE). Prediction speed of the mlwright model (batch rows/s, single-row p50) is
measured on the test set with ``mlwright.load``. AutoGluon runs side by side, once per preset
(default ``medium_quality`` and ``best_quality``, ``num_cpus=2``), when ``--autogluon-python``
names an interpreter that has ``autogluon.tabular`` (it pins library versions that conflict
with mlwright's, so it lives in its own virtual environment: ``python3.11 -m venv agvenv &&
agvenv/bin/pip install 'autogluon.tabular[lightgbm,catboost,xgboost]==1.6.*'``); otherwise its
default-preset column is copied from the suite's ANCHORS.md (an anchor, not re-measured).
mlwright is compared with the better AutoGluon preset on each dataset.

``--merge`` fills the systems not run now from a previous run's JSON (for development: the
figures of record are those of one run with every system).

Results are printed, written as JSON, and appended to benchmarks/RESULTS.md as markdown tables:
scores, outcomes and mean ranks, then where mlwright's time went on each dataset.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable

FLAML_SCRIPT = r"""
import json, sys, time
import numpy as np, pandas as pd
train_path, test_path, target, task, metric, budget, out = sys.argv[1:8]
from flaml import AutoML
train = pd.read_csv(train_path)
test = pd.read_csv(test_path)
X, y = train.drop(columns=[target]), train[target]
automl = AutoML()
names = {"roc_auc": "roc_auc", "log_loss": "log_loss", "rmse": "rmse"}
flaml_task = "regression" if task == "regression" else "classification"
automl.fit(X, y, task=flaml_task, metric=names[metric], time_budget=float(budget), n_jobs=2,
           verbose=0, seed=0)
Xt = test.drop(columns=[target])
if task == "regression":
    result = {"prediction": [float(v) for v in automl.predict(Xt)]}
else:
    proba = automl.predict_proba(Xt)
    result = {"classes": [str(c) for c in automl.classes_], "proba": proba.tolist()}
json.dump(result, open(out, "w"))
"""

AUTOGLUON_SCRIPT = r"""
import json, sys, tempfile
import pandas as pd
train_path, test_path, target, task, metric, budget, out, presets = sys.argv[1:9]
from autogluon.tabular import TabularPredictor
train = pd.read_csv(train_path)
test = pd.read_csv(test_path)
names = {"roc_auc": "roc_auc", "log_loss": "log_loss", "rmse": "root_mean_squared_error"}
with tempfile.TemporaryDirectory() as path:
    predictor = TabularPredictor(
        label=target, eval_metric=names[metric], problem_type=task, path=path, verbosity=0
    ).fit(train, time_limit=float(budget), num_cpus=2, presets=presets)
    Xt = test.drop(columns=[target])
    if task == "regression":
        result = {"prediction": [float(v) for v in predictor.predict(Xt)]}
    else:
        proba = predictor.predict_proba(Xt)
        result = {"classes": [str(c) for c in proba.columns], "proba": proba.to_numpy().tolist()}
json.dump(result, open(out, "w"))
"""

SPEED_SCRIPT = r"""
import json, sys, time
import numpy as np, pandas as pd
import mlwright
model = mlwright.load(sys.argv[1])
test = pd.read_csv(sys.argv[2]).drop(columns=[sys.argv[3]])
model.predict(test.head(100))
began = time.perf_counter(); model.predict(test); batch = time.perf_counter() - began
timings = []
for i in range(min(300, len(test))):
    row = test.iloc[[i]]
    began = time.perf_counter(); model.predict(row); timings.append(time.perf_counter() - began)
print(json.dumps({"rows_per_s": len(test) / batch,
                  "single_p50_ms": float(np.median(timings)) * 1000,
                  "single_p95_ms": float(np.percentile(timings, 95)) * 1000}))
"""


def _peak_rss(command: list[str], timeout: float, cwd: Path | None = None) -> dict:
    """Run a command: wall seconds, its own peak RSS in MB (via os.wait4), output, status."""
    began = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=cwd)
        deadline = began + timeout
        status = None
        rusage = None
        while status is None:
            pid, code, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                status = "ok" if code == 0 else f"exit {os.waitstatus_to_exitcode(code)}"
                rusage = usage
                break
            if time.monotonic() > deadline:
                process.kill()
                _, _, rusage = os.wait4(process.pid, 0)
                status = "timeout"
                break
            time.sleep(0.05)
        process.returncode = 0  # reaped above
        wall = time.monotonic() - began
        out.seek(0)
        err.seek(0)
        return {
            "status": status,
            "wall": wall,
            "peak_rss_mb": rusage.ru_maxrss / 1024 if rusage else None,
            "stdout": out.read().decode(errors="replace")[-3000:],
            "stderr": err.read().decode(errors="replace")[-3000:],
        }


def score(entry: dict, test: pd.DataFrame, prediction: dict) -> float:
    """Score with the suite's metric (scikit-learn), independent of mlwright's own metrics."""
    from sklearn.metrics import roc_auc_score

    y = test[entry["target"]]
    if entry["task"] == "regression":
        predicted = np.asarray(prediction["prediction"], dtype=float)
        return float(np.sqrt(np.mean((y.to_numpy(float) - predicted) ** 2)))
    classes = [str(c) for c in prediction["classes"]]
    proba = np.asarray(prediction["proba"], dtype=float)
    truth = y.astype(str).to_numpy()
    order = sorted(set(classes) | set(truth))
    if entry["metric"] == "roc_auc":
        positive = order[1]
        column = classes.index(positive)
        return float(roc_auc_score(truth == positive, proba[:, column]))
    proba = np.clip(proba, 1e-15, 1 - 1e-15)
    proba = proba / proba.sum(axis=1, keepdims=True)
    index = {c: i for i, c in enumerate(classes)}
    picked = np.array([proba[r, index[t]] if t in index else 1e-15 for r, t in enumerate(truth)])
    return float(-np.mean(np.log(picked)))


def run_mlwright(entry: dict, budget: float, work: Path) -> dict:
    model_dir = work / f"model-{entry['name']}"
    command = [
        PYTHON,
        "-m",
        "mlwright",
        "train",
        str(entry["train"]),
        "--target",
        entry["target"],
        "--time-limit",
        str(budget),
        "--output",
        str(model_dir),
        "--quiet",
    ]
    # In the scratch folder: the MLflow run every training records lands there.
    result = _peak_rss(command, timeout=budget * 3 + 120, cwd=work)
    record = {
        "wall": result["wall"],
        "peak_rss_mb": result["peak_rss_mb"],
        "status": result["status"],
    }
    if result["status"] != "ok":
        record["error"] = (result["stderr"] or result["stdout"])[-800:]
        return record
    predictions = work / f"pred-{entry['name']}.csv"
    predicted = _peak_rss(
        [
            PYTHON,
            "-m",
            "mlwright",
            "predict",
            str(model_dir),
            str(entry["test"]),
            "--output",
            str(predictions),
        ],
        timeout=600,
    )
    if predicted["status"] != "ok":
        record.update(status="predict failed", error=predicted["stderr"][-800:])
        return record
    frame = pd.read_csv(predictions, keep_default_na=False)
    test = pd.read_csv(entry["test"])
    if entry["task"] == "regression":
        prediction = {"prediction": frame["prediction"].astype(float).tolist()}
    else:
        columns = [c for c in frame.columns if c.startswith("proba_")]
        prediction = {
            "classes": [c[len("proba_") :] for c in columns],
            "proba": frame[columns].to_numpy(float),
        }
    record["score"] = score(entry, test, prediction)
    speed = _peak_rss(
        [PYTHON, "-c", SPEED_SCRIPT, str(model_dir), str(entry["test"]), entry["target"]],
        timeout=600,
    )
    if speed["status"] == "ok":
        record.update(json.loads(speed["stdout"].strip().splitlines()[-1]))
    lineage_file = model_dir / "lineage.json"
    if lineage_file.is_file():
        lineage = json.loads(lineage_file.read_text())
        record["timings"] = lineage.get("timings") or lineage.get("settings", {}).get("timings")
    metrics_file = model_dir / "metrics.json"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        record["validation"] = metrics.get("validation_score", metrics.get("validation"))
        record["search_timings"] = metrics.get("timings")
        # What the final model is made of, and whether each member was refitted or served by
        # its fold models (the time budget decides).
        record["ensemble"] = [
            [e["model"], round(float(e.get("weight", 0.0)), 3), e.get("served_as")]
            for e in metrics.get("leaderboard", [])
            if e.get("in_ensemble")
        ]
    return record


def run_flaml(entry: dict, budget: float, work: Path) -> dict:
    return run_script("flaml", PYTHON, FLAML_SCRIPT, entry, budget, work)


def run_autogluon(entry: dict, budget: float, work: Path, python: str, presets: str) -> dict:
    return run_script(
        f"autogluon-{presets}", python, AUTOGLUON_SCRIPT, entry, budget, work, presets
    )


def run_script(
    system: str, python: str, script: str, entry: dict, budget: float, work: Path, *extra: str
) -> dict:
    """Fit and predict with another system's Python API in its own process; score its output."""
    out = work / f"{system}-{entry['name']}.json"
    command = [
        python,
        "-c",
        script,
        str(entry["train"]),
        str(entry["test"]),
        entry["target"],
        entry["task"],
        entry["metric"],
        str(budget),
        str(out),
        *extra,
    ]
    result = _peak_rss(command, timeout=budget * 3 + 120)
    record = {
        "wall": result["wall"],
        "peak_rss_mb": result["peak_rss_mb"],
        "status": result["status"],
    }
    if result["status"] != "ok":
        lines = [line for line in result["stderr"].splitlines() if line.strip()]
        record["error"] = lines[-1][:300] if lines else "no output"
        return record
    record["score"] = score(entry, pd.read_csv(entry["test"]), json.loads(out.read_text()))
    return record


def read_anchors(suite_dir: Path) -> dict[str, float]:
    """AutoGluon default-preset scores from ANCHORS.md (copied, not re-measured)."""
    path = suite_dir.parent / "ANCHORS.md"
    anchors: dict[str, float] = {}
    if not path.is_file():
        return anchors
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and re.match(r"^[0-9.]+ \(", cells[3]):
            anchors[cells[0]] = float(cells[3].split()[0])
    return anchors


def _better(a, b, greater: bool) -> int:
    """1 if a beats b, 0 if tie (within 1e-4 relative), -1 if it loses; a failure loses."""
    if a is None and b is None:
        return 0
    if a is None:
        return -1
    if b is None:
        return 1
    if abs(a - b) <= 1e-4 * max(abs(a), abs(b), 1e-12):
        return 0
    return 1 if (a > b) == greater else -1


#: The systems a run can hold, in table order, with their column titles.
SYSTEMS = {
    "mlwright": "mlwright",
    "flaml": "FLAML 2.7",
    "autogluon": "AutoGluon 1.6 default",
    "autogluon_best": "AutoGluon 1.6 best_quality",
}
#: Record key of each AutoGluon preset.
PRESET_KEYS = {"medium_quality": "autogluon", "best_quality": "autogluon_best"}


def _better_autogluon(record: dict, greater: bool) -> float | None:
    """The better of the AutoGluon presets measured on this dataset (a failure counts as none)."""
    scores = [
        record[key]["score"]
        for key in ("autogluon", "autogluon_best")
        if record.get(key) and "score" in record[key]
    ]
    if not scores:
        return None
    return max(scores) if greater else min(scores)


def _show(result: dict | None) -> str:
    if not result:
        return "not run"
    if "score" in result:
        return f"{result['score']:.4f}"
    return f"failed ({result.get('status')})"


def _wall(result: dict | None) -> str:
    return f"{result['wall']:.1f}" if result and result.get("wall") is not None else "-"


def table(records: list[dict], anchors: dict[str, float], budget: float) -> str:
    measured_ag = any(record.get("autogluon") or record.get("autogluon_best") for record in records)
    present = [name for name in SYSTEMS if any(record.get(name) for record in records)]
    titles = [SYSTEMS[name] for name in present]
    if not measured_ag:
        titles.append("AutoGluon 1.6 default (anchor)")
    header = "| dataset | metric | " + " | ".join(f"{t} | wall s" for t in titles)
    header += " | vs FLAML | vs better AutoGluon |"
    rows = [header, "|" + " --- |" * (2 + 2 * len(titles) + 2)]
    tally = {"flaml": [0, 0, 0], "autogluon": [0, 0, 0]}
    ranks: dict[str, list[float]] = {name: [] for name in present}
    words = {1: "win", 0: "tie", -1: "loss", None: "-"}
    for record in records:
        greater = record["metric"] == "roc_auc"
        ours = record.get("mlwright", {})
        flaml = record.get("flaml", {})
        anchor = anchors.get(record["name"])
        ag_score = _better_autogluon(record, greater) if measured_ag else anchor
        ag_known = measured_ag and any(record.get(k) for k in ("autogluon", "autogluon_best"))
        versus_flaml = _better(ours.get("score"), flaml.get("score"), greater) if flaml else None
        versus_ag = (
            _better(ours.get("score"), ag_score, greater)
            if ours and (ag_known or (not measured_ag and anchor is not None))
            else None
        )
        for key, outcome in (("flaml", versus_flaml), ("autogluon", versus_ag)):
            if outcome is not None:
                tally[key][{1: 0, 0: 1, -1: 2}[outcome]] += 1
        # Rank among the systems measured in this run (a failure ranks last).
        here = [name for name in present if record.get(name)]
        if len(here) > 1:
            for name in here:
                mine = record[name].get("score")
                outcomes = [
                    _better(record[o].get("score"), mine, greater) for o in here if o != name
                ]
                ranks[name].append(1 + outcomes.count(1) + 0.5 * outcomes.count(0))
        cells = [f"{_show(record.get(name))} | {_wall(record.get(name))}" for name in present]
        if not measured_ag:
            cells.append(f"{anchor if anchor is not None else '-'} | -")
        rows.append(
            f"| {record['name']} | {record['metric']} | "
            + " | ".join(cells)
            + f" | {words[versus_flaml]} | {words[versus_ag]} |"
        )
    lines = ["\n".join(rows), ""]
    lines.append(
        f"mlwright vs FLAML (same run): {tally['flaml'][0]} wins, {tally['flaml'][1]} ties, "
        f"{tally['flaml'][2]} losses."
    )
    source = (
        "the better preset per dataset, same run"
        if measured_ag
        else "default-preset anchor from ANCHORS.md, another day"
    )
    lines.append(
        f"mlwright vs AutoGluon ({source}): {tally['autogluon'][0]} wins, "
        f"{tally['autogluon'][1]} ties, {tally['autogluon'][2]} losses."
    )
    failures = [
        f"{record['name']} ({name})"
        for record in records
        for name in present
        if record.get(name) and "score" not in record[name]
    ]
    lines.append("Failures: " + (", ".join(failures) if failures else "none") + ".")
    ranked = {name: np.mean(values) for name, values in ranks.items() if values}
    if ranked:
        lines.append(
            "Mean rank among the systems measured in this run (ties count half): "
            + ", ".join(f"{SYSTEMS[name]} {value:.2f}" for name, value in ranked.items())
            + "."
        )
    walls = [r["mlwright"]["wall"] for r in records if r.get("mlwright", {}).get("wall")]
    if walls:
        within = sum(budget - 2 <= w <= budget * 1.05 for w in walls)
        lines.append(
            f"mlwright runs ending within 2 s of the budget and at most 5% past it "
            f"({budget - 2:.0f}-{budget * 1.05:.0f} s): {within} of {len(walls)}; "
            f"shortest {min(walls):.1f} s, median {np.median(walls):.1f} s, longest "
            f"{max(walls):.1f} s."
        )
    lines.append("")
    lines.append(time_table(records))
    speed = [r for r in records if "rows_per_s" in r.get("mlwright", {})]
    for record in speed:
        m = record["mlwright"]
        lines.append(
            f"- {record['name']}: prediction {m['rows_per_s']:,.0f} rows/s (batch of the test "
            f"set), single-row p50 {m['single_p50_ms']:.2f} ms, p95 {m['single_p95_ms']:.2f} ms"
        )
    return "\n".join(lines)


def time_table(records: list[dict]) -> str:
    """Where mlwright's time went on each dataset: phases of the command and of the search."""
    rows = [
        "| dataset | wall s | start-up s | read + schema + checks s | search: CV + tuning s | "
        "ensemble s | refit s | after the search s | members (how each serves) |",
        "|" + " --- |" * 9,
    ]
    for record in records:
        ours = record.get("mlwright") or {}
        timings = ours.get("timings") or {}
        if not timings:
            continue
        inner = ours.get("search_timings") or {}
        nan = float("nan")
        wall = ours.get("wall") or 0.0
        startup = timings.get("before_training", 0.0) + timings.get("imports", 0.0)
        data = sum(timings.get(k, 0.0) for k in ("read", "fingerprint", "schema", "checks"))
        search = timings.get("search", 0.0)
        members = ", ".join(
            f"{name} {weight:g} ({served or '?'})"
            for name, weight, served in ours.get("ensemble", [])
        )
        rows.append(
            f"| {record['name']} | {wall:.1f} | {startup:.1f} | {data:.1f} | "
            f"{inner.get('search', nan):.1f} | {inner.get('ensemble', nan):.1f} | "
            f"{inner.get('refit', nan):.1f} | "
            f"{wall - startup - data - search:.1f} | {members} |"
        )
    if len(rows) == 2:
        return ""
    return "Where mlwright's time went (from the artifact's lineage and metrics):\n\n" + "\n".join(
        rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", type=Path)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--datasets", default=None)
    parser.add_argument("--systems", default="mlwright,flaml")
    parser.add_argument(
        "--autogluon-python",
        default=None,
        help="an interpreter with autogluon.tabular installed: runs AutoGluon side by side",
    )
    parser.add_argument(
        "--autogluon-presets",
        default="medium_quality,best_quality",
        help="the AutoGluon presets to run (comma-separated)",
    )
    parser.add_argument("--output", type=Path, default=HERE / "out" / "automl.json")
    parser.add_argument("--no-results", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="render the table from a previous run's JSON output instead of running",
    )
    parser.add_argument(
        "--merge",
        type=Path,
        default=None,
        help="take the systems not run now from a previous run's JSON (development only)",
    )
    args = parser.parse_args()
    entries = json.loads((args.suite / "suite.json").read_text())
    if args.datasets:
        wanted = args.datasets.split(",")
        unknown = sorted(set(wanted) - {e["name"] for e in entries})
        if unknown:
            parser.error(f"unknown datasets: {', '.join(unknown)}")
        entries = [e for e in entries if e["name"] in wanted]
    systems = [name for name in args.systems.split(",") if name]
    if "flaml" in systems:
        try:
            import flaml  # noqa: F401
        except ImportError:
            print("FLAML is not installed (pip install 'mlwright[bench]'); skipping it")
            systems.remove("flaml")
    presets = [p for p in args.autogluon_presets.split(",") if p] if args.autogluon_python else []
    unknown_presets = [p for p in presets if p not in PRESET_KEYS]
    if unknown_presets:
        parser.error(f"unknown AutoGluon presets: {', '.join(unknown_presets)}")
    previous = {}
    if args.merge is not None:
        previous = {r["name"]: r for r in json.loads(args.merge.read_text())}
    anchors = read_anchors(args.suite)
    records = []
    started = dt.datetime.now(dt.UTC)
    load_before = os.getloadavg()
    if args.from_json is not None:
        records = json.loads(args.from_json.read_text())
        started = dt.datetime.fromtimestamp(args.from_json.stat().st_mtime, dt.UTC)
        load_before = (float(np.mean([r.get("load_before", 0) for r in records])),)
        entries = []
    with tempfile.TemporaryDirectory(prefix="mlwright-bench-") as tmp:
        work = Path(tmp)
        for entry in entries:
            entry["train"] = args.suite.resolve() / entry["name"] / "train.csv"
            entry["test"] = args.suite.resolve() / entry["name"] / "test.csv"
            record = {
                "name": entry["name"],
                "metric": entry["metric"],
                "task": entry["task"],
                "load_before": os.getloadavg()[0],
            }
            if "mlwright" in systems:
                record["mlwright"] = run_mlwright(entry, args.time_limit, work)
            if "flaml" in systems:
                record["flaml"] = run_flaml(entry, args.time_limit, work)
            for preset in presets:
                record[PRESET_KEYS[preset]] = run_autogluon(
                    entry, args.time_limit, work, args.autogluon_python, preset
                )
            for name in SYSTEMS:
                if name not in record and previous.get(entry["name"], {}).get(name):
                    record[name] = previous[entry["name"]][name]
                    record.setdefault("merged_from", str(args.merge))
            records.append(record)
            print(json.dumps(record, default=str), flush=True)
    if args.from_json is None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(records, indent=1, default=str))
    report = table(records, anchors, args.time_limit)
    command = "python benchmarks/automl.py " + " ".join(sys.argv[1:])
    merged = (
        f" Systems not run in this command were merged from {args.merge} (another run)."
        if args.merge is not None
        else ""
    )
    header = (
        f"\n## AutoML, {args.time_limit:g} s budget ({started:%Y-%m-%d %H:%M} UTC)\n\n"
        f"Command: `{command}`. Machine: {os.cpu_count()} cores, shared with other work: load "
        f"average {load_before[0]:.1f} at the start (mean over datasets when rendered from "
        f"JSON), {os.getloadavg()[0]:.1f} at the end "
        "(the protocol asks for an idle machine; timings and scores under load are "
        f"pessimistic for every system).{merged}\n\n"
    )
    print(header + report)
    if not args.no_results:
        with open(HERE / "RESULTS.md", "a") as results:
            results.write(header + report + "\n")


if __name__ == "__main__":
    main()
