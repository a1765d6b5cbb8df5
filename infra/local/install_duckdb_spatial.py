"""Install DuckDB's spatial extension from its PyPI wheel, so the BigQuery emulator starts offline.

bqemulator runs ``INSTALL spatial; LOAD spatial`` at start. ``INSTALL`` is a no-op when the extension
is already in DuckDB's extension directory, and otherwise downloads it from extensions.duckdb.org,
which this machine cannot reach. Run with the emulator environment's Python (``make setup`` does).
"""

import sys
from pathlib import Path

import duckdb
import duckdb_extension_spatial

connection = duckdb.connect()
installed = connection.execute(
    "SELECT installed FROM duckdb_extensions() WHERE extension_name = 'spatial'"
).fetchone()
if not (installed and installed[0]):
    wheel_dir = Path(duckdb_extension_spatial.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    extension = wheel_dir / "spatial.duckdb_extension"
    if not extension.exists():
        sys.exit(
            f"the duckdb-extension-spatial wheel has no build for DuckDB {duckdb.__version__} ({extension})."
        )
    connection.execute(f"INSTALL '{extension}'")
connection.execute("LOAD spatial")
