"""How a Spark job logs and fails: its own lines on the terminal, Spark's in the job's log file.

* **Options** every job takes (``add_options``): ``--log_level`` (the job's own Python logger,
  ``spark_jobs``), ``--driver-log-levels`` (Dataproc's form, ``root=WARN,org.apache.spark=WARN,...``: log4j
  levels per logger, applied to Spark's log4j and to the Python loggers of the same names) and
  ``--log_format`` (``text``, or ``json``: one JSON object a line in Cloud Logging's structured form,
  ``severity``, ``message``, ``time`` and ``logging.googleapis.com/labels`` with the job's name).
* **A local session** (the job starts the JVM itself, ``python -m spark_jobs.<job>``): log4j is configured
  by ``log4j2-local.properties`` beside this module plus a small file of the driver log levels, so Spark's
  own log (its warnings, Java stack traces) goes to the job's log file, as does whatever the JVM prints
  before log4j is set up (its stderr is the file). The file: ``$GCPIPE_SPARK_LOG`` (``gcpipe spark submit``
  sets it under ``.gcpipe/logs/spark/``), else one in the temp folder. The job's own lines go to the
  terminal (stderr) and to the file.
* **Under spark-submit or on Dataproc** the launcher's log4j configuration stays (on Dataproc the driver
  output is the job's log); the driver log levels are applied once the session runs (Dataproc also gets
  them in the request, ``loggingConfig.driverLogLevels``).
* **Failures** (``user_errors``): one sentence on stderr, never a traceback there. A deterministic one (a
  missing input, a bad argument, a missing jar: running again would fail the same way) exits with
  ``USER_ERROR``, which ``gcpipe spark submit`` does not retry; anything else exits 1 and names the log file
  that holds the Python and Java detail.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gcpipe.core.errors import GcpipeError

# log4j's level names, as Dataproc's LoggingConfig.Level spells them; Python's equivalents
LEVELS = {
    "ALL": 1,
    "TRACE": 5,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "OFF": logging.CRITICAL + 10,
}
ROOT = "root"
# What a job logs unless it declares otherwise (gcpipe.spark.jobs.SparkJob.driver_log_levels): Spark's
# warnings and errors, the job's own progress.
DRIVER_LOG_LEVELS = "root=WARN,org.apache.spark=WARN,spark_jobs=INFO"
LOG_FORMATS = ("text", "json")
USER_ERROR = 3  # exit status of a deterministic failure: running it again would fail the same way
LOG_ENV = "GCPIPE_SPARK_LOG"  # the log file of a local session
LOG4J_PROPERTIES = Path(__file__).with_name("log4j2-local.properties")
KEEP_LOGS = 50  # a folder of job logs keeps the newest 50
JDBC_HINT = "run `make setup`, which fetches PostgreSQL's JDBC driver into .jars/"
JAR_HINT = "run `make setup`, which fetches the jars the jobs use into .jars/, or add the jar to spark.jars"

log = logging.getLogger("spark_jobs")


class UserError(Exception):
    """A failure the job's input or arguments cause, worded for the user: not worth a retry."""


class JobExit(SystemExit):
    """The end of a failed job: exit status ``code``; ``str()`` is its one sentence (already printed)."""

    def __init__(self, sentence: str, code: int) -> None:
        super().__init__(code)
        self.sentence = sentence

    def __str__(self) -> str:
        return self.sentence


def parse_levels(text: str) -> dict[str, str]:
    """``root=WARN,org.apache.spark=INFO`` as ``{logger: LEVEL}``; one sentence (ValueError) if malformed."""
    levels: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, equals, level = (part.strip() for part in item.partition("="))
        if not (name and equals and level.upper() in LEVELS):
            raise ValueError(
                f"{item!r} is not LOGGER=LEVEL with LEVEL one of {', '.join(LEVELS)} "
                "(e.g. root=WARN,org.apache.spark=WARN,spark_jobs=INFO)"
            )
        levels[name] = level.upper()
    return levels


def format_levels(levels: dict[str, str]) -> str:
    """``{logger: LEVEL}`` as ``--driver-log-levels`` takes it."""
    return ",".join(f"{name}={level}" for name, level in levels.items())


def _levels_type(text: str) -> dict[str, str]:
    try:
        return parse_levels(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_options(parser: argparse.ArgumentParser) -> None:
    """The logging options of every job."""
    parser.add_argument(
        "--log_level",
        type=str.upper,
        choices=[name for name in LEVELS if name not in ("ALL", "TRACE")],
        help="The job's own log (the spark_jobs logger); default: spark_jobs in --driver-log-levels (INFO).",
    )
    parser.add_argument(
        "--driver-log-levels",
        "--driver_log_levels",
        dest="driver_log_levels",
        type=_levels_type,
        metavar="LOGGER=LEVEL,...",
        help="Dataproc's driver log levels, for log4j (Spark's log) and the Python loggers of the same names; "
        f"they replace the levels of those loggers in the default, {DRIVER_LOG_LEVELS}.",
    )
    parser.add_argument(
        "--progress_seconds",
        type=float,
        default=10.0,
        help="Log the running stages' finished tasks every N seconds (default 10; 0: never).",
    )
    parser.add_argument(
        "--log_format",
        choices=LOG_FORMATS,
        default="text",
        help="text (default), or json: Cloud Logging's structured lines (severity, message, time, labels).",
    )


# -- the job's own log ------------------------------------------------------------------------------


@dataclass
class _Settings:
    job: str = "spark_jobs"
    levels: dict[str, str] = field(default_factory=lambda: parse_levels(DRIVER_LOG_LEVELS))
    log_format: str = "text"
    log_file: Path | None = None  # the local session's, once chosen
    handlers: list[logging.Handler] = field(default_factory=list)


_settings = _Settings()


class CloudLoggingFormatter(logging.Formatter):
    """A record as a JSON line Cloud Logging's agents read as a structured entry."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        entry = {
            "severity": record.levelname,  # DEBUG, INFO, WARNING, ERROR, CRITICAL: Cloud Logging's names
            "message": message,
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "logging.googleapis.com/labels": {"job": _settings.job},
            "logger": record.name,
        }
        if record.funcName:  # a logging call's place (not the failure sentence's)
            entry["logging.googleapis.com/sourceLocation"] = {
                "file": record.pathname,
                "line": str(record.lineno),
                "function": record.funcName,
            }
        return json.dumps(entry, ensure_ascii=False)


def _formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return CloudLoggingFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")


def setup_logging(job: str, args: argparse.Namespace | None = None) -> None:
    """The job's Python logging from its options: the driver log levels on the loggers of those names
    (``--log_level`` on ``spark_jobs``), lines on stderr in the chosen format."""
    # the levels given replace those of the same loggers (as on Dataproc, other loggers keep theirs)
    levels = {**parse_levels(DRIVER_LOG_LEVELS), **(getattr(args, "driver_log_levels", None) or {})}
    if getattr(args, "log_level", None):
        levels["spark_jobs"] = args.log_level
    _settings.job, _settings.levels = job, levels
    _settings.log_format = getattr(args, "log_format", None) or "text"
    root = logging.getLogger()
    for handler in _settings.handlers:  # called again (a test running two jobs): replace, not add
        root.removeHandler(handler)
    terminal = logging.StreamHandler(sys.stderr)
    terminal.setFormatter(_formatter(_settings.log_format))
    _settings.handlers = [terminal]
    root.addHandler(terminal)
    for name, level in levels.items():
        (root if name == ROOT else logging.getLogger(name)).setLevel(LEVELS[level])


def _add_file_handler(path: Path) -> None:
    handler = logging.FileHandler(path)
    handler.setFormatter(_formatter(_settings.log_format))
    _settings.handlers.append(handler)
    logging.getLogger().addHandler(handler)


# -- Spark's log ------------------------------------------------------------------------------------


def log_file(app_name: str) -> Path:
    """The local session's log file (chosen once): ``$GCPIPE_SPARK_LOG``, else one in the temp folder."""
    if _settings.log_file is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        default = Path(tempfile.gettempdir()) / "gcpipe-spark" / f"{app_name}-{stamp}-{os.getpid()}.log"
        path = Path(os.environ.get(LOG_ENV) or default).absolute()
        path.parent.mkdir(parents=True, exist_ok=True)
        _prune(path.parent)
        _settings.log_file = path
    return _settings.log_file


def _prune(folder: Path, keep: int = KEEP_LOGS) -> None:
    """Remove all but the newest ``keep`` job logs (and their levels files) of ``folder``."""

    def age(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except FileNotFoundError:  # another run pruned it
            return 0.0

    logs = sorted(folder.glob("*.log"), key=age, reverse=True)
    for old in logs[keep:]:
        for stale in (old, old.with_suffix(".log4j2.properties")):
            stale.unlink(missing_ok=True)


def quiet_conf(conf: dict[str, str], app_name: str) -> dict[str, str]:
    """``conf`` of a local session with log4j sent to the job's log file at the driver log levels: our
    properties plus a file of the levels (a composite configuration), appended to the driver's Java
    options (its other flags kept)."""
    path = log_file(app_name)
    levels = path.with_suffix(".log4j2.properties")
    lines = [f"rootLogger.level = {_settings.levels.get(ROOT, 'WARN')}"]
    for i, (name, level) in enumerate(item for item in _settings.levels.items() if item[0] != ROOT):
        lines += [f"logger.driver{i}.name = {name}", f"logger.driver{i}.level = {level}"]
    levels.write_text("# the driver log levels of this run (spark_jobs.logs)\n" + "\n".join(lines) + "\n")
    options = f"-Dgcpipe.spark.log={path} -Dlog4j2.configurationFile={LOG4J_PROPERTIES.absolute()},{levels}"
    key = "spark.driver.extraJavaOptions"
    return {**conf, key: f"{conf[key]} {options}" if conf.get(key) else options}


@contextmanager
def jvm_output_to_log(app_name: str) -> Iterator[None]:
    """While a local session starts its JVM, our stderr is the log file: the JVM inherits it, so what it
    prints before log4j is configured (and ever after on stderr) lands there, not on the terminal."""
    path = log_file(app_name)
    sys.stderr.flush()
    saved = os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(target, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(target)
    if not any(isinstance(h, logging.FileHandler) for h in _settings.handlers):
        _add_file_handler(path)
    log.info("Spark's own log: %s", path)


def apply_driver_log_levels(spark) -> None:
    """The driver log levels on log4j in the running driver (under spark-submit, in a Serverless batch,
    in a session started before); a local session started by the job has them from its start."""
    jvm = spark.sparkContext._jvm
    given = jvm.java.lang.System.getProperty("gcpipe.spark.log")  # spark-submit --driver-java-options
    if given and _settings.log_file is None:  # Spark's log is in that file: the job's detail goes there too
        _settings.log_file = Path(given).absolute()
        _add_file_handler(_settings.log_file)
        log.info("Spark's own log: %s", _settings.log_file)
    configurator = jvm.org.apache.logging.log4j.core.config.Configurator
    for name, level in _settings.levels.items():
        log4j_level = jvm.org.apache.logging.log4j.Level.toLevel(level)
        if name == ROOT:
            configurator.setRootLevel(log4j_level)
        else:
            configurator.setLevel(name, log4j_level)


def _action(stage_name: str) -> str:
    """`` (count)`` for a stage named ``count at ...``; nothing for Spark's internal names (``$anonfun$...``)."""
    action = stage_name.split(" at ")[0]
    return f" ({action})" if action.isidentifier() else ""


@contextmanager
def progress(spark, seconds: float) -> Iterator[None]:
    """While the body runs, every ``seconds`` (0: never) an INFO line of the running stages and their
    finished tasks (Spark's console progress bar is off: it would break into the terminal's lines)."""
    if not seconds or seconds <= 0:
        yield
        return
    tracker, stop = spark.sparkContext.statusTracker(), threading.Event()

    def report() -> None:
        while not stop.wait(seconds):
            try:
                stages = [tracker.getStageInfo(stage) for stage in tracker.getActiveStageIds()]
            except Exception:  # the session is stopping: nothing more to report
                return
            running = [
                f"stage {s.stageId}{_action(s.name)}: {s.numCompletedTasks}/{s.numTasks} tasks"
                for s in sorted(filter(None, stages), key=lambda s: s.stageId)
            ]
            if running:
                log.info("running %s", ", ".join(running))

    reporter = threading.Thread(target=report, name="spark-progress", daemon=True)
    reporter.start()
    try:
        yield
    finally:
        stop.set()
        reporter.join(timeout=5)


# -- failures ---------------------------------------------------------------------------------------


def _say(sentence: str) -> None:
    """The failure's one sentence: plain on stderr, or a JSON line of severity ERROR; also in the file."""
    sys.stdout.flush()
    if _settings.log_format == "json":
        record = logging.LogRecord("spark_jobs", logging.ERROR, __file__, 0, sentence, None, None)
        print(CloudLoggingFormatter().format(record), file=sys.stderr, flush=True)
    else:
        print(sentence, file=sys.stderr, flush=True)
    if _settings.log_file:
        with open(_settings.log_file, "a") as out:
            out.write(sentence + "\n")


def _java_throwable(err: BaseException):
    """The Java exception behind a PySpark error, if any."""
    return getattr(err, "java_exception", None) or getattr(err, "_origin", None)


def _root_cause(err: BaseException) -> str:
    """``Class: message`` of the innermost Java cause, else of the Python error; first line only."""
    throwable = _java_throwable(err)
    text = ""
    try:
        while throwable is not None and throwable.getCause() is not None:
            throwable = throwable.getCause()
        if throwable is not None:
            text = str(throwable.toString())
    except Exception:  # the JVM is gone: the Python side's words will do
        text = ""
    text = text or f"{type(err).__name__}: {err}"
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return first if len(first) <= 300 else first[:297] + "..."


def _deterministic(job: str, err: BaseException) -> str | None:
    """The sentence for a failure that would recur on every attempt, else None."""
    from pyspark.errors import AnalysisException

    if isinstance(err, UserError | GcpipeError):  # ConfigError, a missing pinned jar, ...
        text = str(err)
        return text if text.startswith(f"{job}:") else f"{job}: {text}"
    if isinstance(err, AnalysisException) and err.getCondition() == "PATH_NOT_FOUND":
        path = (err.getMessageParameters() or {}).get("path", "the input")
        return f"{job}: {path} does not exist: nothing to read."
    condition = getattr(err, "getCondition", lambda: None)()
    if condition == "JAVA_GATEWAY_EXITED":  # no Java, or a JAVA_HOME that has none
        where = f" (what it printed is in {_settings.log_file})" if _settings.log_file else ""
        return (
            f"{job}: Spark's JVM did not start{where}: install Java 17 (Debian's openjdk-17-jre-headless) "
            "or point JAVA_HOME at it."
        )
    cause = _root_cause(err)
    if cause.startswith("org.apache.hadoop.fs.UnsupportedFileSystemException"):  # gs:// without its connector
        return f"{job}: Spark cannot read or write here: {cause.partition(': ')[2]} (a jar is missing): {JAR_HINT}."
    if cause.startswith("java.lang.ClassNotFoundException"):
        missing = cause.partition(":")[2].strip().removeprefix("Class ").removesuffix(" not found")
        hint = JDBC_HINT if "postgresql" in missing.lower() else JAR_HINT
        return f"{job}: the class {missing} is not on Spark's class path (a jar is missing): {hint}."
    return None


@contextmanager
def user_errors(job: str) -> Iterator[None]:
    """A failed job ends in one sentence on stderr: a deterministic failure (missing input, bad argument,
    missing jar) with exit status USER_ERROR, any other with 1 and the name of the log file that holds the
    Python and Java detail (without a local log file, the detail goes to stderr before the sentence)."""
    try:
        yield
    except (KeyboardInterrupt, JobExit):
        raise
    except SystemExit as err:  # a job's own one sentence (raise SystemExit("job: ..."))
        if isinstance(err.code, str):
            _say(err.code)
            raise JobExit(err.code, 1) from None
        raise
    except Exception as err:  # every failure ends in one sentence
        sentence = _deterministic(job, err)
        detail = "".join(traceback.format_exception(err))
        if _settings.log_file:
            with open(_settings.log_file, "a") as out:
                out.write(detail)
        if sentence:
            _say(sentence)
            raise JobExit(sentence, USER_ERROR) from None
        if _settings.log_file:
            sentence = f"{job} failed: {_root_cause(err)}; the detail is in {_settings.log_file}."
        else:
            print(detail, file=sys.stderr, end="")
            sentence = f"{job} failed: {_root_cause(err)}."
        _say(sentence)
        raise JobExit(sentence, 1) from None
