"""What tracking and the registry cost: store start-up, logging a run, resolving references.

Usage::

    python benchmarks/registry.py [--repeats 5]

Measures, each as the median of ``--repeats`` runs in a fresh temporary project folder:

- ``open_store`` on a new SQLite store (schema migrations) and on an existing one, in a fresh
  process (includes importing MLflow, as a command pays it);
- the tail a tracked training adds after the model is saved: ``log_model`` (pyfunc flavor,
  params, metrics, leaderboard, dataset input, artifacts) and ``register``;
- resolving ``models:/NAME@champion`` the first time (download) and when cached;
- ``mlwright train --max-trials 2 --models lightgbm`` with and without ``--track``.

Prints a Markdown table; append it to benchmarks/RESULTS.md with the command line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CREDIT = REPO / "examples" / "credit-g" / "train.csv"


def _fresh_process(code: str, home: Path) -> float:
    environment = {k: v for k, v in os.environ.items() if "TRACKING_URI" not in k}
    environment["MLWRIGHT_HOME"] = str(home)
    script = (
        f"import time\nstarted = time.perf_counter()\n{code}\nprint(time.perf_counter() - started)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True
    )
    return float(result.stdout.strip().splitlines()[-1])


def _cli_seconds(args: list[str], home: Path, cwd: Path) -> float:
    environment = {k: v for k, v in os.environ.items() if "TRACKING_URI" not in k}
    environment["MLWRIGHT_HOME"] = str(home)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mlwright", *args], env=environment, cwd=cwd,
        capture_output=True, check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    from registry.conftest import quick_artifact

    rows: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        rows.setdefault(name, []).append(seconds)

    open_code = "from mlwright.registry import open_store\nopen_store()"
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch)
            home = root / ".mlwright"
            record("open_store, new SQLite store (fresh process)", _fresh_process(open_code, home))
            record("open_store, existing store (fresh process)", _fresh_process(open_code, home))
            os.environ["MLWRIGHT_HOME"] = str(home)
            from mlwright.config import get_settings

            get_settings.cache_clear()
            from mlwright.model import load
            from mlwright.registry import promote, resolve_reference, start_training_run

            artifact = quick_artifact(root / "model")
            model = load(artifact)
            run = start_training_run(data=str(CREDIT), settings={"target": "class"})
            started = time.perf_counter()
            with run:
                run.log_model(model, data=str(CREDIT))
            record("log_model after training (in process)", time.perf_counter() - started)
            started = time.perf_counter()
            version = run.register("credit")
            record("register (in process)", time.perf_counter() - started)
            promote("credit", version.version, store=run.store)
            started = time.perf_counter()
            resolve_reference("models:/credit@champion")
            record(
                "resolve models:/credit@champion, first (download)", time.perf_counter() - started
            )
            started = time.perf_counter()
            resolve_reference("models:/credit@champion")
            record("resolve models:/credit@champion, cached", time.perf_counter() - started)
            train = ["train", str(CREDIT), "--target", "class", "--max-trials", "2",
                     "--models", "lightgbm", "--quiet"]  # fmt: skip
            record("mlwright train (tiny) --no-track",
                   _cli_seconds([*train, "--no-track", "-o", "a"], home, root))  # fmt: skip
            record("mlwright train (tiny) --track --register",
                   _cli_seconds([*train, "--register", "x", "-o", "b"], home, root))  # fmt: skip

    load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{os.cpu_count()} cores, 1-minute load average at the end {load_average:.1f}\n")
    print("| measurement | median s | min s |")
    print("| --- | ---: | ---: |")
    for name, values in rows.items():
        print(f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} |")


if __name__ == "__main__":
    main()
