"""The local GCP stack: Pub/Sub, BigQuery and Cloud Storage emulators, a metadata stand-in, and PostgreSQL.

Each service runs on a fixed loopback port, in its own process group, with its pid file, log and data
under the state folder (``.gcpipe/``). ``up`` is idempotent, ``down`` leaves no process behind, and
every failure a user can meet (port taken, emulator missing, service dies at start) is one
:class:`StackError` sentence. ``.gcpipe/env`` holds the variables that point clients at the stack.
PostgreSQL (the local Cloud SQL) is not in the core stack: what needs it starts it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gcpipe.core.config import PROJECT_ROOT, Config
from gcpipe.core.errors import GcpipeError
from gcpipe.core.secrets import ensure_local_secret, read_secret

EMULATOR_VENV = PROJECT_ROOT / ".venv-emulators"


class StackError(GcpipeError):
    """A local-stack failure, worded as one sentence that says what to do."""


@dataclass(frozen=True)
class Service:
    name: str
    title: str
    port_key: str
    command: Callable[[Config], list[str]]
    health: Callable[[Service, Config], bool]
    start_timeout: float = 30.0
    extra_ports: tuple[str, ...] = ()
    prepare: Callable[[Config], None] | None = None  # one-time set-up before a start (e.g. initdb)
    scheme: str = "http"
    env: tuple[tuple[str, str], ...] = ()  # variables for this service's process alone

    def url(self, config: Config) -> str:
        return f"{self.scheme}://127.0.0.1:{config.port(self.port_key)}"


def http_ok(path: str) -> Callable[[Service, Config], bool]:
    """A health check: GET ``path`` (``{project}`` filled in) on the service answers 200."""

    def check(service: Service, config: Config) -> bool:
        url = service.url(config) + path.format(project=config.project)
        request = urllib.request.Request(url, headers={"Metadata-Flavor": "Google"})  # noqa: S310 (our http URL)
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    return check


def _pubsub_command(config: Config) -> list[str]:
    return [_find_pubsub_emulator(), "--host=127.0.0.1", f"--port={config.port('pubsub')}"]


def _find_pubsub_emulator() -> str:
    """The emulator's launcher: $GCPIPE_PUBSUB_EMULATOR, else where the Google Cloud CLI installs it."""
    if override := os.environ.get("GCPIPE_PUBSUB_EMULATOR"):
        launcher = Path(override)
    else:
        gcloud = shutil.which("gcloud")
        sdk_root = Path(gcloud).resolve().parents[1] if gcloud else Path("/usr/lib/google-cloud-sdk")
        launcher = sdk_root / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"
    if launcher.is_file():
        return str(launcher)
    raise StackError(
        f"the Pub/Sub emulator is not installed (no {launcher}): run `make setup` to install the Debian "
        "package google-cloud-cli-pubsub-emulator (or `gcloud components install pubsub-emulator`)."
    )


def _emulator_bin(name: str) -> str:
    path = EMULATOR_VENV / "bin" / name
    if not path.exists():
        raise StackError(f"{name} is not installed in {EMULATOR_VENV}: run `make setup`.")
    return str(path)


# The emulator's Java heap: its own default is a quarter of RAM. The pipeline rotates its subscription
# (pipelines/rides/subscriptions.py), since the emulator keeps every acknowledged message of a subscription.
PUBSUB_JVM = (("CLOUD_PUBSUB_EMULATOR_OPTS", "-Xms64m -Xmx512m -XX:+UseSerialGC"),)
# bqemulator, started through a launcher that turns off its per-write growth (time-travel copies of the
# whole table on every write, every query result kept): see the launcher's docstring.
BQ_LAUNCHER = PROJECT_ROOT / "infra/local/bqemulator_launcher.py"


def _bigquery_command(config: Config) -> list[str]:
    _emulator_bin("bqemulator")  # installed, or one sentence
    return [
        _emulator_bin("python"),
        str(BQ_LAUNCHER),
        "start",
        "--rest-host",
        "127.0.0.1",
        "--rest-port",
        str(config.port("bigquery")),
        "--grpc-host",
        "127.0.0.1",
        "--grpc-port",
        str(config.port("bigquery_grpc")),
        "--project",
        config.project,
        "--persistent",
        "--data-dir",
        str(data_dir(config, "bigquery")),
        "--log-level",
        "warning",
        "--log-format",
        "console",
    ]


def _gcs_command(config: Config) -> list[str]:
    # In memory: its disk store keeps each object as a file named after it, so a folder marker (``out/``,
    # which Spark's GCS connector writes) and the objects under it collide (IsADirectoryError).
    return [
        _emulator_bin("gcp-storage-emulator"),
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(config.port("gcs")),
        "--default-bucket",
        config.lake_bucket,
        "--in-memory",
        "--quiet",
    ]


def _metadata_command(config: Config) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gcpipe.local.metadata_server",
        "--port",
        str(config.port("metadata")),
        "--project",
        config.project,
    ]


def _dashboard_command(config: Config) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gcpipe.app.cli",
        "dashboard",
        "--dataset",
        f"{config.project}.{config.dataset('taxi')}",
        "--port",
        str(config.port("dashboard")),
    ]


# -- PostgreSQL: the local stand-in for Cloud SQL ---------------------------------------------------

POSTGRES_ROOT = Path("/usr/lib/postgresql")  # Debian's layout: /usr/lib/postgresql/<major>/bin


def _postgres_bin(name: str) -> str:
    found = sorted(
        (path for path in POSTGRES_ROOT.glob(f"*/bin/{name}") if path.parts[-3].isdigit()),
        key=lambda path: int(path.parts[-3]),
    )
    if not found:
        raise StackError(
            f"PostgreSQL is not installed (no {POSTGRES_ROOT}/<version>/bin/{name}): run `make setup` to "
            "install the Debian package postgresql."
        )
    return str(found[-1])


def _as_postgres_user(command: list[str]) -> list[str]:
    """The server refuses to run as root: as root, drop to Debian's postgres account."""
    if os.geteuid() != 0:
        return command
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *command]


def postgres_data(config: Config) -> Path:
    return data_dir(config, "postgres") / "pgdata"


def postgres_password(config: Config) -> str:
    """The local server's password, made on first use and kept where config.jdbc_password_secret points."""

    ensure_local_secret(config.jdbc_password_secret)
    return read_secret(config.jdbc_password_secret)


def _postgres_prepare(config: Config) -> None:
    """First start: initdb a cluster in the state folder, its superuser the configured user."""
    data = postgres_data(config)
    if (data / "PG_VERSION").exists():
        return
    initdb = _postgres_bin("initdb")
    home = data.parent
    if os.geteuid() == 0:
        unreachable = [p for p in home.parents if p != Path("/") and not p.stat().st_mode & 0o001]
        if unreachable:
            raise StackError(
                f"PostgreSQL runs as the postgres user, who cannot enter {unreachable[0]}: "
                "`chmod o+x` it or set GCPIPE_STATE_DIR to a folder that user can reach."
            )
        shutil.chown(home, "postgres", "postgres")
    password_file = home / "initdb-password"
    password_file.write_text(postgres_password(config))
    if os.geteuid() == 0:
        shutil.chown(password_file, "postgres", "postgres")
    try:
        result = subprocess.run(
            _as_postgres_user(
                [
                    initdb,
                    "-D",
                    str(data),
                    "-U",
                    config.jdbc_user,
                    f"--pwfile={password_file}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ]
            ),
            capture_output=True,
            text=True,
            cwd=home,
        )
    finally:
        password_file.unlink(missing_ok=True)
    if result.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        raise StackError(f"initdb failed for the local PostgreSQL: {_last_line(result.stderr)}")


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "(no output)"


def _postgres_command(config: Config) -> list[str]:
    # Loopback TCP only, no Unix socket; fsync off: a local stand-in trades crash safety for speed.
    return _as_postgres_user(
        [
            _postgres_bin("postgres"),
            "-D",
            str(postgres_data(config)),
            "-p",
            str(config.port("postgres")),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]
    )


def _postgres_health(service: Service, config: Config) -> bool:
    """Healthy when the configured user logs in with the configured password."""
    import psycopg2

    try:
        psycopg2.connect(
            host="127.0.0.1",
            port=config.port("postgres"),
            user=config.jdbc_user,
            dbname="postgres",
            password=postgres_password(config),
            connect_timeout=2,
        ).close()
    except psycopg2.Error:
        return False
    return True


SERVICES: dict[str, Service] = {
    service.name: service
    for service in (
        Service("metadata", "metadata stand-in", "metadata", _metadata_command, http_ok("/"), 10),
        Service("pubsub", "Pub/Sub emulator", "pubsub", _pubsub_command, http_ok("/"), 60, env=PUBSUB_JVM),
        Service(
            "bigquery",
            "BigQuery emulator",
            "bigquery",
            _bigquery_command,
            http_ok("/bigquery/v2/projects/{project}/datasets"),
            60,
            ("bigquery_grpc",),
        ),
        Service("gcs", "Cloud Storage emulator", "gcs", _gcs_command, http_ok("/storage/v1/b"), 30),
        Service(
            "postgres",
            "PostgreSQL (Cloud SQL)",
            "postgres",
            _postgres_command,
            _postgres_health,
            60,
            prepare=_postgres_prepare,
            scheme="postgresql",
        ),
        Service("dashboard", "live dashboard (rides)", "dashboard", _dashboard_command, http_ok("/"), 60),
    )
}
CORE_SERVICES = ("metadata", "pubsub", "bigquery", "gcs")


# -- state folder --------------------------------------------------------------------------------


def data_dir(config: Config, name: str) -> Path:
    path = config.state_dir / "data" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _pid_file(config: Config, name: str) -> Path:
    return config.state_dir / "run" / f"{name}.pid"


def log_file(config: Config, name: str) -> Path:
    return config.state_dir / "logs" / f"{name}.log"


def env_file(config: Config) -> Path:
    return config.state_dir / "env"


def _read_pid(config: Config, name: str) -> int | None:
    try:
        return int(_pid_file(config, name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


# -- processes -----------------------------------------------------------------------------------


def _proc_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces; the fields after its closing parenthesis are plain.
    return raw[raw.rindex(")") + 2 :].split()


def _alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z"


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat and stat[0] != "Z" and int(stat[2]) == pgid:
                members.append(int(entry.name))
    return members


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def healthy(service: Service, config: Config) -> bool:
    return service.health(service, config)


_children: dict[int, subprocess.Popen] = {}  # started by this process: reaped on stop


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def start_service(service: Service, config: Config) -> str:
    """Start one service unless it already runs; return "started" or "running"."""
    pid = _read_pid(config, service.name)
    if pid and _alive(pid):
        if _wait_healthy(service, config, pid):
            return "running"
        raise StackError(
            f"the {service.title} (pid {pid}) runs but does not answer on port {config.port(service.port_key)}; "
            f"run `gcpipe down` and try again (log: {log_file(config, service.name)})."
        )
    for key in (service.port_key, *service.extra_ports):
        if _port_open(config.port(key)):
            raise StackError(
                f"port {config.port(key)} for the {service.title} is already taken by another process; "
                "stop that process or set GCPIPE_PORT_OFFSET to move the whole stack."
            )
    if service.prepare:
        service.prepare(config)
    command = service.command(config)
    log = log_file(config, service.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    _pid_file(config, service.name).parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **dict(service.env)}
    with open(log, "ab") as out:
        try:
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=data_dir(config, service.name),
                env=env,
                start_new_session=True,
            )
        except OSError as err:
            raise StackError(
                f"the {service.title} could not be started ({command[0]}: {err.strerror})."
            ) from None
    _children[process.pid] = process
    _pid_file(config, service.name).write_text(str(process.pid))
    try:
        ready = _wait_healthy(service, config, process.pid)
    except BaseException:  # Ctrl-C while waiting: leave nothing half-started behind
        stop_service(service, config)
        raise
    if not ready:
        stop_service(service, config)
        raise StackError(
            f"the {service.title} did not become healthy within {service.start_timeout:.0f} s; "
            f"its log says: {_tail(log)}"
        )
    return "started"


def _wait_healthy(service: Service, config: Config, pid: int) -> bool:
    deadline = time.monotonic() + service.start_timeout
    while time.monotonic() < deadline:
        if healthy(service, config):
            return True
        if not _alive(pid):
            return False
        time.sleep(0.2)
    return False


def stop_service(service: Service, config: Config, timeout: float = 15.0) -> str:
    """Stop one service and everything it started; return "stopped" or "not running"."""
    pid = _read_pid(config, service.name)
    _pid_file(config, service.name).unlink(missing_ok=True)
    if not pid or not _group_members(pid):
        _reap(pid)
        return "not running"
    stop_group(pid, timeout)
    return "stopped"


def group_alive(pid: int) -> bool:
    """Whether the process group ``pid`` leads still has a live member (zombies do not count)."""
    return bool(_group_members(pid))


def stop_group(pid: int, timeout: float = 15.0) -> None:
    """Stop the process group ``pid`` leads: SIGTERM, then SIGKILL what is left after ``timeout`` s."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while _group_members(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if not _group_members(pid):
            break
    _reap(pid)


def _reap(pid: int | None) -> None:
    process = _children.get(pid) if pid else None
    if process is not None and process.poll() is not None:
        _children.pop(pid, None)


# -- the stack -----------------------------------------------------------------------------------


def _selected(names: Iterable[str] | None) -> list[Service]:
    names = list(names or CORE_SERVICES)
    unknown = [name for name in names if name not in SERVICES]
    if unknown:
        raise StackError(f"unknown service {unknown[0]!r}; known: {', '.join(SERVICES)}.")
    return [SERVICES[name] for name in names]


def up(config: Config, services: Iterable[str] | None = None, report=print) -> dict[str, str]:
    """Start the stack (idempotent) and write the env file; on failure stop what this call started."""
    if not config.is_local:
        raise StackError(
            "the local stack serves the local target only; unset GCPIPE_TARGET or set it to local."
        )
    outcome: dict[str, str] = {}
    try:
        for service in _selected(services):
            outcome[service.name] = start_service(service, config)
            report(f"{service.title:<24} {outcome[service.name]:<8} {service.url(config)}")
    except BaseException:  # a failure or Ctrl-C: stop what this call started
        for name, state in outcome.items():
            if state == "started":
                stop_service(SERVICES[name], config)
        raise
    write_env_file(config)
    return outcome


def down(config: Config, services: Iterable[str] | None = None, report=print) -> dict[str, str]:
    names = (
        list(services)
        if services
        else [name for name in SERVICES if _read_pid(config, name)] or CORE_SERVICES
    )
    outcome = {}
    for service in reversed(_selected(names)):
        outcome[service.name] = stop_service(service, config)
        report(f"{service.title:<24} {outcome[service.name]}")
    return outcome


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    title: str
    state: str  # "healthy", "unhealthy" or "stopped"
    pid: int | None
    url: str
    log: Path


def status(config: Config) -> list[ServiceStatus]:
    result = []
    for service in SERVICES.values():
        pid = _read_pid(config, service.name)
        running = bool(pid and _alive(pid))
        state = ("healthy" if healthy(service, config) else "unhealthy") if running else "stopped"
        result.append(
            ServiceStatus(
                service.name,
                service.title,
                state,
                pid if running else None,
                service.url(config),
                log_file(config, service.name),
            )
        )
    return result


def running(config: Config) -> set[str]:
    """The services whose process is alive (no health check)."""
    return {name for name in SERVICES if (pid := _read_pid(config, name)) and _alive(pid)}


@contextmanager
def left_as_found(config: Config):
    """On the way out, stop the services started inside the block, by whatever started them."""
    before = running(config)
    try:
        yield
    finally:
        started = running(config) - before
        if started:
            down(config, [name for name in SERVICES if name in started], report=lambda *_: None)


def write_env_file(config: Config) -> Path:
    path = env_file(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    shell = {
        **config.emulator_env(),
        # `gcloud storage` on the local bucket: the emulator's endpoint, no credentials
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": f"http://127.0.0.1:{config.port('gcs')}/",
        "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
        "CLOUDSDK_CORE_PROJECT": config.project,
    }
    lines = [f"export {key}={value}" for key, value in shell.items()]
    path.write_text(
        "# written by `gcpipe up`: source it to point clients at the local stack\n" + "\n".join(lines) + "\n"
    )
    return path
