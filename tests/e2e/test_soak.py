"""A bounded soak in CI: 200 requests/s for 45 s against a real server, on loopback.

The load, the memory samples and the log check are benchmarks/soak.py's own (imported, not
copied): client threads send single-row ``POST /predict`` requests on a fixed schedule, each
with its own request id; the server's resident memory is read from ``/proc`` after warm-up and
at the end; every acknowledged request id is looked up in the SQLite prediction log while the
server runs and after it stopped. The latencies are printed (``-s``) and recorded as test
properties, never compared with a bar: CI machines differ. ``python benchmarks/soak.py`` runs
the longer version and writes benchmarks/RESULTS.md.
"""

# The fixtures come from tests/serve/serve_helpers.py and are parameters of the tests here.
# ruff: noqa: F811

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "serve"))

from serve_helpers import credit_model_dir  # noqa: E402,F401  (a fixture)

pytestmark = pytest.mark.slow

RATE = 200.0
SECONDS = 45.0


@pytest.fixture(scope="module")
def soak_module():
    """benchmarks/soak.py (which imports its neighbour benchmarks/serve.py as ``serve``)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        return importlib.import_module("soak")
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads RSS from /proc")
def test_a_soak_has_no_errors_flat_memory_and_a_complete_log(
    soak_module, credit_model_dir, tmp_path, record_property
):
    home = tmp_path / ".mlwright"
    home.mkdir()
    settings = argparse.Namespace(
        duration=SECONDS, rate=RATE, warmup=10.0, threads=8, log_buffered=False
    )
    result = soak_module.soak(credit_model_dir, home, settings)
    # Reported, not asserted: shown with -s (and on failure), and in the JUnit properties.
    print(json.dumps(result, indent=2))  # noqa: T201
    for key in ("rate", "p50_ms", "p99_ms", "max_ms", "rss_ratio"):
        record_property(key, round(result[key], 3))

    assert result["errors"] == 0
    assert result["warmup_errors"] == 0
    assert result["requests"] == int(RATE / settings.threads * SECONDS) * settings.threads
    # Flat memory: at the end within 10% of what it was after warm-up.
    assert result["rss_ratio"] <= 1.10, result
    # The durable log (the default): every answered request is logged, while running and after.
    assert result["acknowledged"] >= result["requests"]
    assert result["missing_while_running"] == 0
    assert result["missing_after_stop"] == 0
