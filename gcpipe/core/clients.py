"""Google Cloud clients for the configured target, and the warehouse set-up every loader shares.

On the local target the clients carry anonymous credentials and the emulator endpoints (from the
``*_EMULATOR_HOST`` variables that ``Config.emulator_env`` defines), so nothing probes for credentials.
On gcp they use Application Default Credentials.
"""

from __future__ import annotations

from gcpipe.core.config import Config, load_config, validate_table_id
from gcpipe.core.schemas import SchemaError, TableSpec


def _credentials(config: Config):
    if config.is_local:
        from google.auth.credentials import AnonymousCredentials

        config.apply_env()
        return AnonymousCredentials()
    return None


def bigquery_client(config: Config | None = None):
    from google.cloud import bigquery

    config = config or load_config()
    return bigquery.Client(project=config.project, credentials=_credentials(config))


def storage_client(config: Config | None = None):
    from google.cloud import storage

    config = config or load_config()
    return storage.Client(project=config.project, credentials=_credentials(config))


def publisher_client(config: Config | None = None):
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient(credentials=_credentials(config or load_config()))


def subscriber_client(config: Config | None = None):
    from google.cloud import pubsub_v1

    return pubsub_v1.SubscriberClient(credentials=_credentials(config or load_config()))


def ensure_dataset(client, dataset: str, location: str | None = None) -> None:
    from google.cloud import bigquery

    spec = bigquery.Dataset(f"{client.project}.{dataset}")
    if location:
        spec.location = location
    client.create_dataset(spec, exists_ok=True)


def ensure_table(client, spec: TableSpec, table_id: str) -> None:
    """Create ``table_id`` (``[project.]dataset.table``) from the catalog's spec if it does not exist.

    A table that exists with other columns than the schema (an older schema, say) is one clear error,
    not a load that fails later on a missing column.
    """
    ensure_dataset(client, validate_table_id(table_id).split(".")[-2])
    client.query(spec.ddl(table_id)).result()
    existing = {f.name: (f.field_type, f.mode) for f in client.get_table(table_id).schema}
    wanted = {f.name: (f.field_type, f.mode) for f in spec.schema.to_bigquery()}
    if existing != wanted:
        differ = sorted(
            name for name in existing.keys() | wanted.keys() if existing.get(name) != wanted.get(name)
        )
        raise SchemaError(
            f"table {table_id} exists with columns that differ from sql/schemas/{spec.schema.name}.json "
            f"({', '.join(differ)}): drop it, or on the local target run `make clean` to start afresh."
        )


def row_count(client, table_id: str) -> int:
    """``COUNT(*)`` of a table: the emulator's table metadata (``num_rows``) lags behind DML, a query does not."""
    (row,) = client.query(f"SELECT COUNT(*) AS n FROM `{validate_table_id(table_id)}`").result()
    return row["n"]


def bigquery_read_client(config: Config | None = None):
    """A BigQuery Storage Read API client: Arrow batches instead of JSON pages (how results are pulled fast).

    Locally it talks gRPC to the emulator's read service, with no limit on message size (a batch of a
    100,000-row table exceeds gRPC's default 4 MiB).
    """
    from google.cloud import bigquery_storage

    config = config or load_config()
    if not config.is_local:
        return bigquery_storage.BigQueryReadClient()
    import grpc
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

    config.apply_env()
    channel = grpc.insecure_channel(
        f"127.0.0.1:{config.port('bigquery_grpc')}", options=[("grpc.max_receive_message_length", -1)]
    )
    return bigquery_storage.BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=channel))
