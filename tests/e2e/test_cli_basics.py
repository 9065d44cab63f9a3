"""The command line's contract: help, version, exit codes, no tracebacks."""

from __future__ import annotations

import subprocess
import sys

import mlwright


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlwright", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_help_lists_the_program():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "mlwright" in result.stdout


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"mlwright {mlwright.__version__}"


def test_unknown_command_is_a_usage_error():
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_help_does_not_import_the_heavy_libraries():
    code = (
        "import sys\n"
        "from mlwright.cli import app\n"
        "heavy = [m for m in ('pandas', 'sklearn', 'lightgbm', 'mlflow', 'duckdb', 'numpy')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
