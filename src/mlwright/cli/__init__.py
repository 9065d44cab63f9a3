"""The ``mlwright`` command line.

Each command group lives in its own module and stays thin: parse, call the library, render.
Modules here import only typer and rich at import time; the library (pandas, scikit-learn, ...)
is imported inside the command functions so that ``mlwright --help`` answers fast.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console

from mlwright.cli._app import app
from mlwright.errors import EXIT_INTERNAL_ERROR, MlwrightError

__all__ = ["app", "main"]

# Importing a command module registers its commands on ``app`` (one module per group).
from mlwright.cli import _commands  # noqa: E402,F401


def main(argv: list[str] | None = None) -> None:
    """Run the command line and exit with mlwright's exit codes.

    ``--debug`` (anywhere on the line) or ``MLWRIGHT_DEBUG=1`` shows tracebacks.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("MLWRIGHT_DEBUG", "") not in ("", "0")
    args = [arg for arg in args if arg != "--debug"]
    try:
        # Standalone mode: usage errors print their message and exit 2, help and --version
        # exit 0; every other exception reaches the handlers below.
        app(args=args, prog_name="mlwright")
    except MlwrightError as err:
        if debug:
            raise
        _print_error(str(err))
        sys.exit(err.exit_code)
    except Exception as err:  # the last line of defence: no traceback for the user
        if debug:
            raise
        _print_error(
            f"Internal error in mlwright ({type(err).__name__}: {err}). This is a bug, not "
            "something you did: please report it with the output of the same command "
            "rerun with --debug."
        )
        sys.exit(EXIT_INTERNAL_ERROR)


def _print_error(message: str) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]Error:[/bold red] {message}", markup=True
    )
