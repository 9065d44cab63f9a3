"""Batch prediction of a file of any size, streamed in chunks (``mlwright predict``)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlwright.data import open_table
from mlwright.errors import DataError, write_error
from mlwright.model._model import Model

DEFAULT_CHUNK_ROWS = 100_000


def prediction_frame(model: Model, frame: Any, *, where: str) -> Any:
    """Predictions for one chunk: ``prediction`` and, for classification, ``proba_<class>``.

    The class with the highest probability is the prediction, so the two columns always
    agree and the predictor runs once per chunk.
    """
    features = model._prepare(frame, where=where)
    if len(features) == 0:
        names = [] if model.task == "regression" else [f"proba_{c}" for c in model.classes or []]
        return pd.DataFrame(columns=["prediction", *names])
    if model.task == "regression":
        return pd.DataFrame({"prediction": np.asarray(model.predictor.predict(features))})
    probabilities = np.asarray(model.predictor.predict_proba(features), dtype=float)
    classes = list(model.classes or [])
    labels = np.empty(len(probabilities), dtype=object)
    if len(probabilities):
        # A decision threshold stored with the model (mlwright evaluate --threshold-for)
        # replaces the arg-max.
        decide = getattr(model.predictor, "decide", None)
        positions = decide(probabilities) if decide is not None else probabilities.argmax(axis=1)
        labels[:] = [classes[i] for i in positions]
    columns: dict[str, Any] = {"prediction": labels}
    for position, label in enumerate(classes):
        columns[f"proba_{label}"] = probabilities[:, position]
    return pd.DataFrame(columns)


def iter_chunks(
    source: str | os.PathLike[str], chunk_rows: int, *, na_values: Any = None
) -> Iterator[tuple[int, Any]]:
    """Yield ``(first row number, DataFrame)`` chunks of a data source, in order.

    The data is scanned by DuckDB (:func:`mlwright.data.open_table`, with ``na_values``) and
    fetched as Arrow record batches, so only one chunk is ever a pandas DataFrame.
    """
    with open_table(source, na_values=na_values) as table, table.connection.cursor() as cursor:
        # A cursor of its own: the table's connection may hold an open result, and DuckDB
        # allows one streaming result per connection.
        reader = cursor.sql(f"SELECT * FROM {table.ref}").to_arrow_reader(chunk_rows)
        offset = 0
        pending = []
        pending_rows = 0
        for batch in reader:
            # Regroup DuckDB's batches into chunks of ``chunk_rows`` so that the predictor sees
            # large, efficient batches.
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= chunk_rows:
                yield offset, _to_frame(pending, offset)
                offset += pending_rows
                pending, pending_rows = [], 0
        if pending or offset == 0:
            yield offset, _to_frame(pending, offset, reader.schema)


def _to_frame(batches: list, offset: int, schema: Any = None) -> Any:
    table = pa.Table.from_batches(batches, schema=schema)
    frame = _arrow_to_pandas(table)
    # Row labels are row numbers in the file (0-based), so validation errors point at the
    # right rows whatever chunk they fall in.
    frame.index = pd.RangeIndex(offset, offset + len(frame))
    return frame


def _arrow_to_pandas(table: Any) -> Any:
    """Arrow to pandas with :func:`mlwright.data.read`'s dtypes, decided from Arrow types.

    ``mlwright.data._table.to_pandas_dtypes`` inspects Python values to tell text from decimals,
    which costs a third of a batch prediction; here the Arrow type says it. Text becomes
    pandas' ``str`` dtype, integers ``int64`` (``float64`` with missing values), decimals
    ``float64``, booleans ``bool`` (``boolean`` with missing values).
    """
    text = pd.StringDtype(storage="pyarrow", na_value=np.nan)
    columns: dict[str, Any] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            columns[name] = pd.Series(text.__from_arrow__(column), copy=False)
        elif pa.types.is_string_view(kind):
            column = pc.cast(column, pa.large_string())
            columns[name] = pd.Series(text.__from_arrow__(column), copy=False)
        elif pa.types.is_integer(kind):
            dtype = "float64" if column.null_count else "int64"
            columns[name] = pd.Series(column.to_numpy().astype(dtype, copy=False), copy=False)
        elif pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            values = pc.cast(column, pa.float64()).to_numpy()
            columns[name] = pd.Series(values, copy=False)
        elif pa.types.is_boolean(kind):
            if column.null_count:
                columns[name] = pd.Series(pd.BooleanDtype().__from_arrow__(column), copy=False)
            else:
                columns[name] = pd.Series(column.to_numpy(), copy=False)
        else:
            columns[name] = column.to_pandas()
    frame = pd.DataFrame(columns, copy=False)
    frame.columns = list(table.column_names)
    return frame


def predict_file(
    model: Model,
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> int:
    """Predict every row of ``source`` and write a CSV of predictions to ``output``.

    The output has one row per input row, in input order: a ``prediction`` column and, for
    classification, one ``proba_<class>`` column per class. It is written to a temporary file
    and renamed at the end, so a failure never leaves a partial predictions file.

    Returns
    -------
    int
        The number of rows predicted.
    """
    target = Path(output).expanduser()
    if target.is_dir():
        raise DataError(
            f"The output '{target}' is a directory; pass a file name such as "
            f"{target / 'predictions.csv'}."
        )
    if not target.parent.exists():
        raise DataError(
            f"Cannot write predictions to '{target}': the folder '{target.parent}' does not "
            "exist. Create it or choose another output path."
        )
    if target.exists() and not target.is_file():
        # A device or a pipe (/dev/full, /dev/stdout into a pipe, a FIFO): written in place,
        # since renaming a temporary file over it would replace the device itself.
        temporary = None
    else:
        # A link (/dev/stdout into a file) is followed: the file it names is replaced, never
        # the link.
        target = target.resolve() if target.is_symlink() else target
        temporary = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"
    n_rows = 0
    try:
        with (temporary or target).open("w", encoding="utf-8", newline="") as handle:
            # Read as the training data was read: a marker that was a category at training
            # stays that category, even in a file too small to show it is not a number.
            chunks = iter_chunks(source, chunk_rows, na_values=model.reading_rule)
            for offset, chunk in chunks:
                where = (
                    f"{source}"
                    if offset == 0 and len(chunk) < chunk_rows
                    else f"{source} (rows {offset + 1}-{offset + len(chunk)})"
                )
                predictions = prediction_frame(model, chunk, where=where)
                predictions.to_csv(handle, header=offset == 0, index=False, lineterminator="\n")
                n_rows += len(predictions)
        if temporary is not None:
            os.replace(temporary, target)
    except OSError as err:
        if temporary is not None:
            # Its folder may be what failed (a file where a folder is needed).
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
        kept = temporary is not None and target.exists()
        error = write_error(err, "predictions", target, kept=kept)
        if error is None:
            raise
        raise error from err
    except BaseException:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise
    return n_rows
