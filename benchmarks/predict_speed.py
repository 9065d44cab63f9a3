"""Prediction speed of a trained mlwright model on adult (issue 3's performance bar).

Trains on adult's train.csv with the given budget (the whole ensemble by default, and a lone
LightGBM model as used for latency-critical serving), loads the saved artifact as a user would,
then measures on adult's test set, in this single process:

- batch ``Model.predict`` throughput (rows/s; best of 5 runs over the whole test set),
- batch ``predict_proba`` throughput,
- ``mlwright predict``'s file path (read CSV in chunks, validate, predict, write CSV), rows/s,
- single-row ``Model.predict`` latency over 1,000 calls (p50, p99), with a one-row DataFrame
  and with a dict record.

Targets: >= 100,000 rows/s batch, single-row p50 < 5 ms. Results are appended to
benchmarks/RESULTS.md with the command that produced them.

Usage::

    python benchmarks/predict_speed.py ../shared/bench/data [--time-limit 60]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def measure(model, test, label: str, work: Path) -> dict:
    from mlwright.model._batch import predict_file

    n = len(test)
    batch = []
    for _ in range(5):
        began = time.perf_counter()
        model.predict(test)
        batch.append(time.perf_counter() - began)
    proba = []
    for _ in range(3):
        began = time.perf_counter()
        model.predict_proba(test)
        proba.append(time.perf_counter() - began)

    began = time.perf_counter()
    predict_file(model, work / "test.csv", work / f"predictions-{label}.csv")
    file_seconds = time.perf_counter() - began

    rows = [test.iloc[[i]] for i in range(1000)]
    records = test.head(1000).to_dict(orient="records")
    for row in rows[:20]:  # warm caches and lazy imports
        model.predict(row)
    frame_latency = []
    for row in rows:
        began = time.perf_counter()
        model.predict(row)
        frame_latency.append((time.perf_counter() - began) * 1000)
    dict_latency = []
    for record in records:
        began = time.perf_counter()
        model.predict(record)
        dict_latency.append((time.perf_counter() - began) * 1000)

    def quantile(values, q):
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1]

    return {
        "label": label,
        "rows": n,
        "members": ", ".join(str(m["model"]) for m in model.metrics.get("ensemble", [])),
        "score": model.metrics.get("validation_score"),
        "batch_rows_s": n / min(batch),
        "proba_rows_s": n / min(proba),
        "file_rows_s": n / file_seconds,
        "frame_p50": quantile(frame_latency, 50),
        "frame_p99": quantile(frame_latency, 99),
        "dict_p50": quantile(dict_latency, 50),
        "dict_p99": quantile(dict_latency, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite_dir", type=Path, help="the benchmark suite (holds adult/)")
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--configs",
        default="ensemble,lightgbm",
        help="comma-separated: 'ensemble' (all families) and/or family names",
    )
    parser.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    arguments = parser.parse_args()

    import mlwright
    from mlwright.data import read

    train_path = arguments.suite_dir / "adult" / "train.csv"
    test_path = arguments.suite_dir / "adult" / "test.csv"
    test = read(test_path).drop(columns=["income"])
    results = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mlwright-predict-speed-") as folder:
        work = Path(folder)
        test.to_csv(work / "test.csv", index=False)
        for config in arguments.configs.split(","):
            began = time.monotonic()
            trained = mlwright.train(
                train_path,
                target="income",
                time_limit=arguments.time_limit,
                seed=arguments.seed,
                models=None if config == "ensemble" else config,
                output=work / f"model-{config}",
            )
            train_seconds = time.monotonic() - began
            model = mlwright.load(trained.path)
            result = measure(model, test, config, work)
            result["train_seconds"] = train_seconds
            # Where the training time went (imports, read, checks, search, ...): see lineage.
            result["timings"] = model.lineage.get("timings", {})
            results.append(result)
            print(result, flush=True)

    load_after = os.getloadavg()[0]
    command = "python benchmarks/predict_speed.py " + " ".join(sys.argv[1:])
    lines = [
        "",
        f"## Prediction speed on adult ({dt.date.today().isoformat()})",
        "",
        f"Command: `{command}` on {platform.platform()}, {os.cpu_count()} cores, single "
        f"process. Trained with --time-limit {arguments.time_limit:g}; test set "
        f"{results[0]['rows']:,} rows. Targets: batch >= 100,000 rows/s, single-row p50 < 5 ms. "
        f"Load average {load_before:.1f} at the start, {load_after:.1f} at the end (the machine "
        "is shared; at a load of n, a process gets about 2/n of a core).",
        "",
        "| model | members | val. ROC AUC | train s | batch predict rows/s | predict_proba "
        "rows/s | `mlwright predict` file rows/s | 1-row DataFrame p50 / p99 ms | 1-row dict "
        "p50 / p99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['label']} | {r['members']} | {r['score']:.4f} | {r['train_seconds']:.1f} | "
            f"{r['batch_rows_s']:,.0f} | {r['proba_rows_s']:,.0f} | {r['file_rows_s']:,.0f} | "
            f"{r['frame_p50']:.2f} / {r['frame_p99']:.2f} | {r['dict_p50']:.2f} / "
            f"{r['dict_p99']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if not arguments.no_write:
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
