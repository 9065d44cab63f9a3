"""Prediction cost per model family: measured against the estimates the ensemble budget uses.

Usage::

    python benchmarks/prediction_cost.py SUITE_DIR [--datasets adult,cpu_act] [--trees 200]
        [--rows 20000]

The ensemble keeps the final model within a prediction-cost budget using each family's
``cost()`` estimate, computed from the model's structure (trees, depth, outputs, categorical
features) so that the model chosen does not depend on machine load. This script checks those
estimates: per dataset, it preprocesses the training data as a search does, fits each family's
first portfolio configuration for a fixed number of iterations, times ``predict`` on one thread
over up to ``--rows`` rows (median of five), and prints the measured batch microseconds per row
beside the estimate. A ratio far from 1 means the estimate needs recalibrating.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd


def measure(suite: Path, name: str, trees: int, rows: int) -> list[dict]:
    from mlwright.automl._portfolio import portfolio
    from mlwright.automl._preprocess import Preprocessor
    from mlwright.automl._search import _encode_target, _resolve_task
    from mlwright.automl.families import FAMILY_NAMES, family
    from mlwright.data import Schema

    info = json.loads((suite / "suite.json").read_text())
    entries = info if isinstance(info, list) else info["datasets"]
    entry = next(e for e in entries if e["name"] == name)
    target = entry["target"]
    frame = pd.read_csv(suite / name / "train.csv")
    schema = Schema.infer(frame, target=target)
    labelled = frame[frame[target].notna()]
    task = _resolve_task(schema, labelled[target])
    y, classes = _encode_target(labelled[target], task, schema, target)
    if task == "binary" and classes is not None and len(classes) > 2:
        task = "multiclass"
    n_classes = len(classes) if classes is not None else 0
    preprocessor = Preprocessor(schema, [], 0).fit(labelled, target)
    X = preprocessor.transform(labelled.drop(columns=[target]))
    categorical = list(preprocessor.categorical_)
    sample = X[:rows]
    first = {}
    for candidate in portfolio(task, len(X), X.shape[1]):
        first.setdefault(candidate.family, candidate)
    out = []
    for family_name in FAMILY_NAMES:
        if family_name not in first:
            continue
        module = family(family_name)
        candidate = first[family_name]
        model, iterations = module.fit(
            X,
            y,
            task=task,
            n_classes=n_classes,
            categorical=categorical,
            params=candidate.params,
            seed=0,
            n_threads=2,
            deadline=time.monotonic() + 600,
            n_iterations=trees,
        )
        module.predict(model, sample[:100], task=task, n_threads=1)
        timings = []
        for _ in range(5):
            began = time.perf_counter()
            module.predict(model, sample, task=task, n_threads=1)
            timings.append(time.perf_counter() - began)
        measured = float(np.median(timings)) / len(sample) * 1e6
        _, estimated = module.cost(
            int(iterations),
            candidate.params,
            n_classes if task == "multiclass" else 1,
            len(X),
            n_features=X.shape[1],
            n_categorical=len(categorical),
        )
        out.append(
            {
                "dataset": name,
                "family": family_name,
                "iterations": int(iterations),
                "categorical": f"{len(categorical)}/{X.shape[1]}",
                "measured_us_per_row": round(measured, 2),
                "estimated_us_per_row": round(float(estimated), 2),
                "ratio": round(measured / float(estimated), 2),
            }
        )
        print(json.dumps(out[-1]), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", type=Path)
    parser.add_argument("--datasets", default="adult,cpu_act,car,spambase")
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()
    results = []
    for name in args.datasets.split(","):
        results += measure(args.suite, name, args.trees, args.rows)
    print("| dataset | family | iterations | categorical | measured us/row | estimated | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['dataset']} | {r['family']} | {r['iterations']} | {r['categorical']} | "
            f"{r['measured_us_per_row']} | {r['estimated_us_per_row']} | {r['ratio']} |"
        )


if __name__ == "__main__":
    main()
