"""Tiny real models shared by the evaluation, report and CLI tests (trained once per process).

Loaded by path from other test folders with :func:`load_helper`, so every folder shares one
cache of trained models.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CREDIT_TRAIN = REPO_ROOT / "examples" / "credit-g" / "train.csv"
CREDIT_TEST = REPO_ROOT / "examples" / "credit-g" / "test.csv"

_ROOT = Path(tempfile.mkdtemp(prefix="mlwright-eval-models-"))
_KINDS = {
    # name: (target, model families)
    "lightgbm": ("class", ["lightgbm"]),
    "mixed": ("class", ["lightgbm", "linear"]),
    "regression": ("credit_amount", ["lightgbm"]),
}


@functools.cache
def model_path(kind: str) -> Path:
    """Train (once) a credit-g model of the given kind and return its artifact directory."""
    import mlwright

    target, families = _KINDS[kind]
    output = _ROOT / kind
    mlwright.train(
        CREDIT_TRAIN, target=target, models=families, max_trials=2, seed=0, output=output
    )
    return output


def load_helper():
    """This module, imported once under a fixed name (for use from other test folders)."""
    name = "mlwright_eval_trained"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
