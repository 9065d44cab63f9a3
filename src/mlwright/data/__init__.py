"""Data: reading any source, fingerprints, schemas (inference and validation), profiles, checks.

Readers load data into DuckDB so that files larger than memory are scanned, not loaded;
:func:`read` gives a pandas DataFrame, :func:`open_table` a DuckDB-backed :class:`Table`.
"""

from __future__ import annotations

from mlwright.data._checks import Finding, check
from mlwright.data._fingerprint import fingerprint
from mlwright.data._profile import ColumnProfile, Profile, profile
from mlwright.data._read import MISSING_MARKERS, open_table, read
from mlwright.data._schema import (
    ColumnSchema,
    Problem,
    Schema,
    ValidationReport,
    load_for_target,
)
from mlwright.data._table import Table

__all__ = [
    "MISSING_MARKERS",
    "ColumnProfile",
    "ColumnSchema",
    "Finding",
    "Problem",
    "Profile",
    "Schema",
    "Table",
    "ValidationReport",
    "check",
    "fingerprint",
    "load_for_target",
    "open_table",
    "profile",
    "read",
]
