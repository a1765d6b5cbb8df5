import pytest

from gcpipe.core.config import ConfigError, load_config, validate_identifier


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in (
        "GCPIPE_TARGET",
        "GCPIPE_PROJECT",
        "GCPIPE_REGION",
        "GCPIPE_LAKE_BUCKET",
        "GOOGLE_CLOUD_PROJECT",
        "GCPIPE_PORT_OFFSET",
        "GCPIPE_STATE_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GCPIPE_CONFIG", str(tmp_path / "gcpipe.toml"))
    (tmp_path / "gcpipe.toml").write_text("")
    return tmp_path


def test_local_is_the_default_and_needs_nothing():
    config = load_config()
    assert config.target == "local"
    assert config.project == "gcpipe-local"
    assert config.require_gcp() is config
    assert config.lake.endswith(".gcpipe/lake")
    env = config.emulator_env()
    assert env["PUBSUB_EMULATOR_HOST"] == "127.0.0.1:8085"
    assert env["BIGQUERY_EMULATOR_HOST"] == "http://127.0.0.1:9050"
    assert env["STORAGE_EMULATOR_HOST"] == "http://127.0.0.1:9023"
    assert env["GCE_METADATA_HOST"] == env["GCE_METADATA_IP"] == "127.0.0.1:8095"


def test_gcp_names_exactly_what_is_missing(monkeypatch):
    monkeypatch.setenv("GCPIPE_TARGET", "gcp")
    with pytest.raises(ConfigError) as err:
        load_config().require_gcp()
    message = str(err.value)
    assert "project (GCPIPE_PROJECT)" in message
    assert "lake bucket (GCPIPE_LAKE_BUCKET)" in message
    assert "region" not in message  # it has a default


def test_gcp_from_the_config_file_with_env_overriding(clean_env, monkeypatch):
    (clean_env / "gcpipe.toml").write_text(
        'target = "gcp"\n[gcp]\nproject = "acme-data-prod"\nlake_bucket = "acme-lake"\n'
        'region = "europe-west1"\n[gcp.datasets]\ntaxi = "taxi_prod"\n'
    )
    monkeypatch.setenv("GCPIPE_REGION", "europe-west4")
    config = load_config().require_gcp()
    assert (config.project, config.region, config.lake) == (
        "acme-data-prod",
        "europe-west4",
        "gs://acme-lake",
    )
    assert config.dataset("taxi") == "taxi_prod"
    assert config.dataset("kdd") == "kdd"
    assert config.emulator_env() == {}
    assert config.template_vars()["taxi_dataset"] == "taxi_prod"


def test_port_offset_moves_every_port(monkeypatch):
    monkeypatch.setenv("GCPIPE_PORT_OFFSET", "300")
    config = load_config()
    assert config.port("pubsub") == 8385
    assert config.emulator_env()["BIGQUERY_EMULATOR_HOST"] == "http://127.0.0.1:9350"


@pytest.mark.parametrize(
    ("env", "value", "fragment"),
    [
        ("GCPIPE_TARGET", "aws", "target 'aws' is unknown"),
        ("GCPIPE_PORT_OFFSET", "ten", "GCPIPE_PORT_OFFSET must be a whole number"),
        ("GCPIPE_LAKE_BUCKET", "Bad_Bucket!", "not a valid bucket name"),
    ],
)
def test_bad_settings_are_one_sentence(monkeypatch, env, value, fragment):
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=fragment):
        load_config()


def test_bad_project_id_and_bad_toml(clean_env, monkeypatch):
    monkeypatch.setenv("GCPIPE_TARGET", "gcp")
    monkeypatch.setenv("GCPIPE_PROJECT", "X")
    monkeypatch.setenv("GCPIPE_LAKE_BUCKET", "lake-bucket")
    with pytest.raises(ConfigError, match="not a valid GCP project id"):
        load_config().require_gcp()
    (clean_env / "gcpipe.toml").write_text("target = ")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config()


def test_identifiers_are_validated():
    assert validate_identifier("taxi_2019") == "taxi_2019"
    for bad in ("taxi; DROP TABLE x", "a-b", "", "1abc", "`x`"):
        with pytest.raises(ConfigError):
            validate_identifier(bad)
