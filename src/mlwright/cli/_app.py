"""The Typer application object shared by the command modules."""

from __future__ import annotations

import typer

from mlwright import __version__

app = typer.Typer(
    name="mlwright",
    help=(
        "mlwright: the ML engineer's whole job on tabular data. Read and check data, train "
        "with AutoML, evaluate, register, serve and monitor models."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"mlwright {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """Global options. Add --debug anywhere to see tracebacks."""
