"""Databases: DuckDB and SQLite files, and SQLAlchemy URLs (PostgreSQL, MySQL, ...) with a query."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pandas as pd

from mlwright.data._names import check_columns_exist
from mlwright.data._read_common import (
    _check_duplicate_names,
    _check_path,
    _error_text,
    _first_line,
    _remove,
    _require_rows,
    _sql_string,
)
from mlwright.data._read_files import _table_from_frame
from mlwright.data._table import (
    TABLE_NAME,
    Table,
    fetch_one,
    new_connection,
    quote_identifier,
    to_pandas_dtypes,
)
from mlwright.errors import DataError


def _open_duckdb_file(
    path: Path, *, query: str | None, columns: Sequence[str] | None, nrows: int | None
) -> Table:
    connection, workdir = new_connection(path.stat().st_size)
    try:
        home = fetch_one(connection, "SELECT current_database()")[0]
        try:
            connection.execute(f"ATTACH {_sql_string(str(path))} AS source_db (READ_ONLY)")
        except duckdb.Error as err:
            raise DataError(
                f"{path} could not be opened as a DuckDB database: {_error_text(err)}. "
                "Check that it is a DuckDB file written by a compatible DuckDB version."
            ) from err
        connection.execute("USE source_db")
        if query is None:
            query = _default_query(
                [row[0] for row in connection.execute("SHOW TABLES").fetchall()], str(path)
            )
        target = f"{quote_identifier(home)}.main.{quote_identifier(TABLE_NAME)}"
        try:
            connection.execute(f"CREATE TABLE {target} AS {query}")
        except duckdb.Error as err:
            raise DataError(
                f"The query {query!r} failed on the DuckDB database {path}: "
                f"{_error_text(err)}. Fix the SQL (list the tables with SHOW TABLES)."
            ) from err
        connection.execute(f"USE {quote_identifier(home)}")
        connection.execute("DETACH source_db")
        table = Table(connection, source=f"{path} (query: {query})", workdir=workdir)
    except BaseException:
        connection.close()
        _remove(workdir)
        raise
    return _restrict(table, columns, nrows)


def _default_query(tables: list[str], source: str) -> str:
    if len(tables) == 1:
        return f"SELECT * FROM {quote_identifier(tables[0])}"
    listed = ", ".join(tables) if tables else "none"
    raise DataError(
        f"{source} is a database; say which data to read with a query (--query / query=), e.g. "
        f'"SELECT * FROM {tables[0] if tables else "my_table"}". Its tables: {listed}.'
    )


def _restrict(table: Table, columns: Sequence[str] | None, nrows: int | None) -> Table:
    _check_duplicate_names(table.columns, table.source)
    if columns is None and nrows is None:
        _require_rows(table, table.source)
        return table
    if columns is not None:
        check_columns_exist(columns, table.columns, table.source)
        select = ", ".join(quote_identifier(column) for column in columns)
    else:
        select = "*"
    limit = f" LIMIT {int(nrows)}" if nrows is not None else ""
    connection = table.connection
    connection.execute(
        f"CREATE TABLE __mlwright_restricted AS SELECT {select} FROM {table.ref}{limit}"
    )
    connection.execute(f"DROP TABLE {table.ref}")
    connection.execute(f"ALTER TABLE __mlwright_restricted RENAME TO {table.ref}")
    restricted = Table(connection, source=table.source, workdir=table._workdir)
    table._closed = True  # ownership of the connection moved to the restricted table
    _require_rows(restricted, restricted.source)
    return restricted


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    try:
        # deferred: SQLAlchemy adds ~0.2 s to `import mlwright.data`; only SQL URLs need it
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is masked by pattern instead
        return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)


def _open_url(
    url: str, *, query: str | None, columns: Sequence[str] | None, nrows: int | None
) -> Table:
    masked = mask_url(url)
    if url.startswith("duckdb:///"):
        path = Path(url.removeprefix("duckdb:///"))
        _check_path(path)
        return _open_duckdb_file(path, query=query, columns=columns, nrows=nrows)
    if url.startswith(("http://", "https://", "s3://", "gs://")):
        raise DataError(
            f"mlwright does not download data ({masked}). Download the file first and pass its "
            "local path."
        )
    # deferred: SQLAlchemy adds ~0.2 s to `import mlwright.data`; only SQL URLs need it
    import sqlalchemy
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    fix = (
        "Check the host, port, database name, user and password, and that the server accepts "
        "connections from this machine."
    )
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except ArgumentError as err:
        raise DataError(
            f"{masked} is not a valid SQLAlchemy URL: {err}. Use the form "
            "dialect+driver://user:password@host:port/database, e.g. sqlite:///shop.db."
        ) from err
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            database_path = Path(database)
            if database_path.is_file():
                with database_path.open("rb") as handle:
                    if handle.read(16) != b"SQLite format 3\x00":
                        raise DataError(
                            f"Cannot read from {masked}: {database} is not an SQLite database "
                            "file. Check the path, or read the file by its own format."
                        )
            if not Path(database).is_file():
                raise DataError(
                    f"Cannot read from {masked}: the SQLite database file {database} does not "
                    "exist. Check the path (sqlite:///relative/path.db or "
                    "sqlite:////absolute/path.db)."
                )
            # Read-only, so that a mistyped path never creates an empty database.
            url = f"sqlite:///file:{Path(database).resolve()}?mode=ro&uri=true"
        fix = "Check that the file is an SQLite database and that you may read it."
    try:
        engine = sqlalchemy.create_engine(url)
    except (NoSuchModuleError, ModuleNotFoundError, ImportError) as err:
        raise DataError(
            f"Cannot read from {masked}: the database driver is not installed ({err}). Install "
            "the Python package that provides it (the module named above) with pip, e.g. "
            "pip install 'psycopg[binary]' for postgresql+psycopg://."
        ) from err
    except ArgumentError as err:
        raise DataError(f"{masked} is not a valid SQLAlchemy URL: {err}.") from err
    try:
        try:
            connection = engine.connect()
        except SQLAlchemyError as err:
            raise DataError(
                f"Cannot connect to the database {masked}: {_first_line(err)}. {fix}"
            ) from err
        with connection:
            if query is None:
                tables = sqlalchemy.inspect(connection).get_table_names()
                query = _default_query([str(name) for name in tables], masked)
            try:
                result = connection.execute(sqlalchemy.text(query))
                frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
            except SQLAlchemyError as err:
                raise DataError(
                    f"The query {query!r} failed on {masked}: {_first_line(err)}. Fix the SQL "
                    "(check table and column names)."
                ) from err
    finally:
        engine.dispose()
    frame = to_pandas_dtypes(frame)
    table = _table_from_frame(
        frame, f"{masked} (query: {query})", columns=columns, nrows=nrows, missing_markers={}
    )
    _require_rows(table, table.source)
    return table
