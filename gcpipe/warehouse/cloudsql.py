"""Cloud SQL (PostgreSQL) for the rentals lab: connect, create tables from the schemas, load the lab's CSVs.

The database is named by ``config.jdbc_url`` (the same URL Spark's JDBC source and sink take), the user
by ``config.jdbc_user`` and the password by the secret reference ``config.jdbc_password_secret``. On the
local target that is the stack's PostgreSQL, started here when needed; on gcp, your Cloud SQL instance.
"""

from __future__ import annotations

import re
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from gcpipe.core.config import Config, validate_identifier
from gcpipe.core.errors import GcpipeError
from gcpipe.core.inputs import input_folder
from gcpipe.core.schemas import Schema, load_schema
from gcpipe.core.secrets import read_secret
from gcpipe.local import stack

_JDBC_URL = re.compile(r"^jdbc:postgresql://(?P<host>[^:/]+)(?::(?P<port>\d+))?/(?P<database>\w+)$")
_SQL_TYPES = {
    "STRING": "TEXT",
    "INTEGER": "BIGINT",
    "FLOAT": "DOUBLE PRECISION",
    "NUMERIC": "NUMERIC",
    "BOOLEAN": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMPTZ",
    "DATETIME": "TIMESTAMP",
    "DATE": "DATE",
    "JSON": "JSONB",
}
RENTALS_TABLES = ("accommodations", "ratings")  # the lab's CSV files, named as the tables


class CloudSqlError(GcpipeError):
    """A Cloud SQL problem, worded for the user."""


@dataclass(frozen=True)
class JdbcTarget:
    host: str
    port: int
    database: str

    @classmethod
    def parse(cls, url: str) -> JdbcTarget:
        match = _JDBC_URL.match(url or "")
        if not match:
            raise CloudSqlError(
                f"{url!r} is not a PostgreSQL JDBC URL (jdbc:postgresql://HOST:PORT/DATABASE); "
                "set jdbc_url (GCPIPE_JDBC_URL) to your Cloud SQL instance."
            )
        return cls(match["host"], int(match["port"] or 5432), match["database"])


def create_table_sql(schema: Schema, table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for a flat schema, in PostgreSQL's types."""
    columns = []
    for field in schema.fields:
        if field.type not in _SQL_TYPES or field.repeated:
            raise CloudSqlError(
                f"column {field.name} ({field.type}, {field.mode}) has no PostgreSQL form here."
            )
        columns.append(f"{field.name} {_SQL_TYPES[field.type]}{' NOT NULL' if field.required else ''}")
    return f"CREATE TABLE IF NOT EXISTS {validate_identifier(table, 'table')} ({', '.join(columns)})"


def connect(config: Config, database: str | None = None):
    """A psycopg2 connection to the configured database (or another on the same server)."""
    import psycopg2

    target = JdbcTarget.parse(config.jdbc_url)
    try:
        return psycopg2.connect(
            host=target.host,
            port=target.port,
            dbname=database or target.database,
            user=config.jdbc_user,
            password=read_secret(config.jdbc_password_secret),
            connect_timeout=10,
        )
    except psycopg2.OperationalError as err:
        raise CloudSqlError(
            f"cannot connect to PostgreSQL at {target.host}:{target.port} ({_first_line(err)})."
        ) from None


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def ensure_database(config: Config, database: str | None = None) -> str:
    """Start the local server if needed and create the database unless it exists; return its name."""
    if config.is_local:
        stack.up(config, ["postgres"], report=lambda *_: None)
    name = validate_identifier(database or JdbcTarget.parse(config.jdbc_url).database, "database")
    with _admin(config) as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cursor.fetchone() is None:
            cursor.execute(f"CREATE DATABASE {name}")
    return name


def drop_database(config: Config, database: str) -> None:
    with _admin(config) as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {validate_identifier(database, 'database')} WITH (FORCE)")


@contextmanager
def _admin(config: Config):
    """A cursor on the server's maintenance database, outside any transaction (CREATE DATABASE needs it)."""
    conn = connect(config, "postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            yield cursor
    finally:
        conn.close()


def load_rentals(config: Config, folder: str | Path, database: str | None = None) -> dict[str, int]:
    """Replace the accommodations and ratings tables with the lab's CSVs in ``folder``; rows per table.

    Like the lab's ``gcloud sql import csv``: the files have no header and the schemas' column order.
    """
    folder = input_folder(folder, "the rentals folder")
    name = ensure_database(config, database)
    loaded = {}
    with closing(connect(config, name)) as conn, conn, conn.cursor() as cursor:  # one transaction
        for table in RENTALS_TABLES:
            path = folder / f"{table}.csv"
            if not path.exists():
                raise CloudSqlError(
                    f"{path} does not exist: write the rentals with `gcpipe datagen rentals`."
                )
            cursor.execute(create_table_sql(load_schema(table), table))
            cursor.execute(f"TRUNCATE {table}")
            with path.open() as rows:
                cursor.copy_expert(f"COPY {table} FROM STDIN WITH (FORMAT csv)", rows)
            loaded[table] = cursor.rowcount
    return loaded
