"""In-process prediction speed: the exported ONNX graph against the Python pipeline (issue 16).

Loads a saved model (an artifact directory), exports it with ``mlwright.model.export_onnx``
(parity checked on ``--data``), then measures both runtimes side by side in this one process,
alternating rounds between them so that a busy machine slows both alike:

- single-row ``predict_proba`` latency over ``--calls`` calls (p50, p99): a one-row DataFrame and
  a dict record, through ``Model.predict_proba`` and ``CompiledModel.predict_proba``; and the
  graph alone (``session.run`` on ready tensors), which is what a consumer that builds its own
  tensors pays;
- batch ``predict_proba`` throughput over the rows of ``--data`` (rows/s, median of the rounds),
  with two threads on each side (the Python predictor uses ``n_jobs=2`` for batches), and the
  graph on one thread (on a busy 2-core machine a second onnxruntime thread can cost more than
  it gives).

The table is printed as Markdown; ``--append`` adds it to benchmarks/RESULTS.md.

Usage::

    python benchmarks/onnx_speed.py MODEL_DIR --data TEST.csv [--calls 1000] [--rounds 5]
        [--append]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def _latencies(function, rows, calls: int) -> list[float]:
    times = []
    for index in range(calls):
        row = rows[index % len(rows)]
        began = time.perf_counter()
        function(row)
        times.append(time.perf_counter() - began)
    return times


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path, help="a model artifact directory")
    parser.add_argument("--data", type=Path, required=True, help="rows to predict (CSV)")
    parser.add_argument("--calls", type=int, default=1000, help="single-row calls per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--append", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()

    from mlwright.compiled import CompiledModel
    from mlwright.data import read
    from mlwright.model import export_onnx, load

    model = load(args.model)
    frame = read(args.data, na_values=model.reading_rule)
    frame = frame.drop(columns=[model.target], errors="ignore")
    began = time.perf_counter()
    exported = export_onnx(model, frame)
    export_seconds = time.perf_counter() - began
    single = CompiledModel(exported.graph, threads=1)
    batch = CompiledModel(exported.graph, threads=2)

    one_row_frames = [frame.iloc[[i]] for i in range(min(200, len(frame)))]
    records = frame.head(200).to_dict(orient="records")
    feeds = [single.inputs(row) for row in one_row_frames]
    for row in one_row_frames[:20]:  # warm caches and lazy imports
        model.predict_proba(row)
        single.predict_proba(row)

    cases = {
        ("python", "DataFrame row"): (model.predict_proba, one_row_frames),
        ("onnx", "DataFrame row"): (single.predict_proba, one_row_frames),
        ("python", "dict row"): (model.predict_proba, records),
        ("onnx", "dict row"): (single.predict_proba, records),
        ("onnx", "graph alone (tensors ready)"): (lambda f: single.session.run(None, f), feeds),
    }
    latency: dict[tuple[str, str], list[float]] = {key: [] for key in cases}
    throughput: dict[str, list[float]] = {"python": [], "onnx": [], "onnx, 1 thread": []}
    load_before = os.getloadavg()[0]
    for _ in range(args.rounds):
        for key, (function, rows) in cases.items():
            latency[key] += _latencies(function, rows, args.calls)
        for name, function in (
            ("python", model.predict_proba),
            ("onnx", batch.predict_proba),
            ("onnx, 1 thread", single.predict_proba),
        ):
            began = time.perf_counter()
            function(frame)
            throughput[name].append(len(frame) / (time.perf_counter() - began))
    load_after = os.getloadavg()[0]

    members = ", ".join(
        f"{m['name']} ({m['family']}, weight {m['weight']:.2f}, {m['graphs']} graph(s))"
        for m in exported.members
    )
    parity = exported.parity
    agreement = (
        f"labels agree on {parity['label_agreement']:.1%}"
        if "label_agreement" in parity
        else f"max relative difference {parity['max_rel_diff']:.2g}"
    )
    lines = [
        f"## ONNX against the Python pipeline, in process (issue 16) — "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"`python benchmarks/onnx_speed.py {args.model} --data {args.data} --calls {args.calls} "
        f"--rounds {args.rounds}` on {platform.machine()}, {os.cpu_count()} cores (Python "
        f"{platform.python_version()}); model: {members}. Export {export_seconds:.1f} s, "
        f"{len(exported.graph) / 1e6:.2f} MB; parity on {parity['rows']:,} rows "
        f"({parity['probe_rows']:,} probes): max |difference| {parity['max_abs_diff']:.2g}, "
        f"{agreement}. Rounds alternate between the runtimes; load average {load_before:.1f} "
        f"before and {load_after:.1f} after.",
        "",
        "| measure | Python pipeline | ONNX (onnxruntime) | speed-up |",
        "| --- | --- | --- | --- |",
    ]
    for kind in ("DataFrame row", "dict row"):
        python = latency[("python", kind)]
        onnx = latency[("onnx", kind)]
        p50, o50 = _quantile(python, 0.5) * 1e3, _quantile(onnx, 0.5) * 1e3
        p99, o99 = _quantile(python, 0.99) * 1e3, _quantile(onnx, 0.99) * 1e3
        lines.append(
            f"| single row, {kind}: p50 / p99 | {p50:.3f} / {p99:.3f} ms | "
            f"{o50:.3f} / {o99:.3f} ms | {p50 / o50:.1f}x |"
        )
    alone = latency[("onnx", "graph alone (tensors ready)")]
    lines.append(
        f"| single row, graph alone (tensors ready): p50 / p99 | — | "
        f"{_quantile(alone, 0.5) * 1e3:.3f} / {_quantile(alone, 0.99) * 1e3:.3f} ms | — |"
    )
    python_rate = statistics.median(throughput["python"])
    onnx_rate = statistics.median(throughput["onnx"])
    lines.append(
        f"| batch of {len(frame):,} rows, 2 threads: rows/s (median of {args.rounds}) | "
        f"{python_rate:,.0f} | {onnx_rate:,.0f} | {onnx_rate / python_rate:.1f}x |"
    )
    one_thread = statistics.median(throughput["onnx, 1 thread"])
    lines.append(
        f"| batch of {len(frame):,} rows, ONNX on 1 thread: rows/s (median of {args.rounds}) | "
        f"— | {one_thread:,.0f} | {one_thread / python_rate:.1f}x |"
    )
    table = "\n".join(lines) + "\n"
    print(table)
    if args.append:
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write("\n" + table)


if __name__ == "__main__":
    main()
