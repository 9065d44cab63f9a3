"""``mlwright export``: the whole predictor as one ONNX graph, checked against Python."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from mlwright.cli._app import app
from mlwright.errors import ConfigError

FORMATS = ("onnx",)


@app.command("export")
def export_command(
    model: str = typer.Argument(
        ...,
        help="The model: an artifact directory written by `mlwright train`, runs:/<id>/model, "
        "models:/NAME/VERSION or models:/NAME@alias.",
        show_default=False,
    ),
    format: str = typer.Option(
        "onnx", "--format", "-f", help="The export format (onnx is the only one)."
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="The file to write, e.g. model.onnx.", show_default=False
    ),
    data: str | None = typer.Option(
        None,
        "--data",
        help="Rows to check the graph against the Python pipeline on (a file with the "
        "model's columns). Default: the training data the model's lineage names.",
        show_default=False,
    ),
) -> None:
    """Write MODEL as one ONNX graph (preprocessing and every ensemble member with its weight).

    The graph and the Python pipeline predict the same rows first; a graph that differs by more
    than 1e-5 in a probability, or in any label, is not written.
    """
    if format.lower() not in FORMATS:
        raise ConfigError(f"--format {format!r} is not an export format; use --format onnx.")
    # deferred: mlwright.model loads scikit-learn (~1.5 s), not paid by `mlwright --help`
    from mlwright.model import load
    from mlwright.model._onnx import export_onnx

    started = time.perf_counter()
    loaded = load(model)
    exported = export_onnx(loaded, data)
    exported.save(output)
    parity = exported.parity
    members = ", ".join(
        f"{member['name']} ({member['family']}, weight {member['weight']:.3f}, "
        f"{member['graphs']} graph{'s' if member['graphs'] != 1 else ''})"
        for member in exported.members
    )
    if "label_agreement" in parity:
        agreement = (
            f"max |probability difference| {parity['max_abs_diff']:.2g}, labels agree on "
            f"{parity['label_agreement']:.1%}"
        )
    else:
        agreement = (
            f"max |difference| {parity['max_abs_diff']:.2g} "
            f"({parity['max_rel_diff']:.2g} of the predictions' scale)"
        )
    console = Console(highlight=False)
    console.print(f"Members: {members}")
    console.print(
        f"Parity with the Python pipeline on {parity['rows']:,} rows ({parity['data_rows']:,} "
        f"of the data, {parity['probe_rows']:,} with a column missing or a category unseen): "
        f"{agreement}."
    )
    size = output.stat().st_size
    console.print(f"Wrote {output} ({size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s")
