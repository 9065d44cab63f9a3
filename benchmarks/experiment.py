"""Simulated experiments with known truth: error rates of the sequential and peeked tests.

Usage: python benchmarks/experiment.py [--reps 10000] [--looks 50] [--batch 200] [--append]

A/A: both arms convert at 10%; after every batch of ``batch`` units per arm the experiment is
read. Reported: the mSPRT's false-positive rate (always-valid p < alpha at any look), the
fixed-horizon z-test's rate when it is read at every look, and when read once at the end.
A/B: a true lift of 0.02; reported: mSPRT power, the confidence sequence's uniform coverage,
the median number of units per arm at the first rejection. Also the sticky assignment's
throughput and the SRM p-value of a 50/50 split of 100,000 keys.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

from mlwright.experiment import (
    always_valid_p_values,
    assign_many,
    confidence_sequence,
    srm_check,
)

ALPHA = 0.05


def simulate(reps: int, looks: int, batch: int, lift: float, tau: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = batch * np.arange(1, looks + 1)
    rate_a = rng.binomial(batch, 0.10, (reps, looks)).cumsum(axis=1) / n
    rate_b = rng.binomial(batch, 0.10 + lift, (reps, looks)).cumsum(axis=1) / n
    difference = rate_b - rate_a
    variance = rate_a * (1 - rate_a) / n + rate_b * (1 - rate_b) / n
    p = always_valid_p_values(difference, variance, tau)
    lower, upper = confidence_sequence(difference, variance, tau, ALPHA)
    pooled = (rate_a + rate_b) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.nan_to_num(difference / np.sqrt(pooled * (1 - pooled) * 2 / n))
    fixed = 2 * stats.norm.sf(np.abs(z))
    rejected = p[:, -1] < ALPHA
    first = np.argmax(p < ALPHA, axis=1)[rejected]
    return {
        "msprt_rejections": float(rejected.mean()),
        "peeked_fixed_rejections": float((fixed.min(axis=1) < ALPHA).mean()),
        "final_fixed_rejections": float((fixed[:, -1] < ALPHA).mean()),
        "uniform_coverage": float(((lower <= lift) & (upper >= lift)).all(axis=1).mean()),
        "median_units_at_stop": float(batch * (np.median(first) + 1)) if first.size else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10_000)
    parser.add_argument("--looks", type=int, default=50)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--tau", type=float, default=0.01)
    parser.add_argument("--append", action="store_true", help="Append to benchmarks/RESULTS.md.")
    args = parser.parse_args()
    started = time.perf_counter()
    aa = simulate(args.reps, args.looks, args.batch, 0.0, args.tau, seed=1)
    ab = simulate(args.reps, args.looks, args.batch, 0.02, args.tau, seed=2)
    keys = [f"user-{i}" for i in range(100_000)]
    t0 = time.perf_counter()
    arms = assign_many(keys, {"champion": 0.5, "challenger": 0.5}, salt="bench")
    assign_seconds = time.perf_counter() - t0
    srm = srm_check(
        {a: int((arms == a).sum()) for a in ("champion", "challenger")},
        {"champion": 0.5, "challenger": 0.5},
    )
    elapsed = time.perf_counter() - started
    lines = [
        f"## Experiment statistics ({time.strftime('%Y-%m-%d')}, {platform.python_version()})",
        "",
        f"Command: `python benchmarks/experiment.py --reps {args.reps} --looks {args.looks} "
        f"--batch {args.batch} --tau {args.tau}` ({elapsed:.1f} s)",
        "",
        f"- A/A at 10% conversion, {args.reps:,} experiments read after each of {args.looks} "
        f"batches of {args.batch} units/arm, alpha {ALPHA}: mSPRT false-positive rate "
        f"{aa['msprt_rejections']:.4f}; fixed-horizon z-test read at every look "
        f"{aa['peeked_fixed_rejections']:.4f}; read once at the end "
        f"{aa['final_fixed_rejections']:.4f}; confidence sequence uniform coverage "
        f"{aa['uniform_coverage']:.4f}.",
        f"- A/B with a true lift of 0.02: mSPRT power {ab['msprt_rejections']:.4f}, uniform "
        f"coverage of the truth {ab['uniform_coverage']:.4f}, median "
        f"{ab['median_units_at_stop']:.0f} units/arm at the first rejection "
        f"(horizon {args.looks * args.batch:,}).",
        f"- Sticky assignment: 100,000 keys in {assign_seconds:.2f} s; challenger share "
        f"{(arms == 'challenger').mean():.4f}, SRM p = {srm.p_value:.3f}.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.append:
        results = Path(__file__).with_name("RESULTS.md")
        with results.open("a", encoding="utf-8") as handle:
            handle.write("\n" + text)


if __name__ == "__main__":
    sys.exit(main())
