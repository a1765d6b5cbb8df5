import json
import subprocess
import sys

from gcpipe.app.cli import COMMANDS, cli


def _gcpipe(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "gcpipe.app.cli", *args], capture_output=True, text=True, timeout=120, **kwargs
    )


def test_every_registered_command_loads():
    for name in COMMANDS:
        assert cli.get_command(None, name) is not None, name


def test_help_lists_the_commands_without_importing_them():
    result = _gcpipe("--help")
    assert result.returncode == 0
    for name in ("up", "down", "status", "datagen", "demo"):
        assert f"  {name} " in result.stdout


def test_datagen_writes_and_reports_json(tmp_path):
    out = tmp_path / "trips.csv"
    result = _gcpipe("datagen", "taxi-trips", "--rows", "500", "--malformed", "0.02", "--output", str(out))
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["rows"] == 500 and manifest["valid"] == 490
    assert len(out.read_bytes().splitlines()) == 501


def test_config_for_gcp_without_settings_is_one_sentence(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "GCPIPE_CONFIG": str(tmp_path / "none.toml"), "HOME": str(tmp_path)}
    (tmp_path / "none.toml").write_text("")
    result = _gcpipe("config", "--target", "gcp", env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: the gcp target needs project (GCPIPE_PROJECT), lake bucket (GCPIPE_LAKE_BUCKET): "
        "set them in the environment or in gcpipe.toml."
    )
