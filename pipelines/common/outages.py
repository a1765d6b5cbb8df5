"""BigQuery out of reach (the emulator stopped or restarting), as a pipeline's writes meet it: what counts
as an outage, and trying a whole step again until it is over (``OUTAGE_SECONDS`` at most), with logs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

OUTAGE_SECONDS = 120.0
T = TypeVar("T")


def unreachable(err: Exception) -> bool:
    """BigQuery out of reach, or back from a restart that forgot the job being waited on (the emulator
    keeps its jobs in memory); not a refusal of the request."""
    import requests
    from google.api_core import exceptions

    if isinstance(err, exceptions.NotFound):
        return "not found: job" in str(err).lower()
    transient = (
        exceptions.RetryError,  # the client's own retries gave up on a transient error
        exceptions.ServiceUnavailable,
        exceptions.InternalServerError,
        exceptions.BadGateway,
        exceptions.GatewayTimeout,
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        ConnectionError,
    )
    return isinstance(err, transient)


def short_retry():
    """The client's retries cut short, so an outage reaches the caller's own loop (which logs and waits)."""
    from google.cloud.bigquery import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(5)


def through_outages(step: Callable[[bool], T], what: str, log: logging.Logger) -> T:
    """``step(again)`` until it gets through BigQuery: tried again every 2 s while BigQuery is out of reach
    (``again`` True after a failed try, which may have landed); another error, or a longer outage, stands."""
    lost_at = None
    while True:
        try:
            done = step(lost_at is not None)
        except Exception as err:
            if not unreachable(err):
                raise
            lost_at = lost_at or time.monotonic()
            if time.monotonic() - lost_at > OUTAGE_SECONDS:
                raise
            log.warning("BigQuery unreachable (%s), trying again in 2 s: %s", what, err)
            time.sleep(2)
            continue
        if lost_at is not None:
            log.info("BigQuery reachable again after %.0f s: %s done", time.monotonic() - lost_at, what)
        return done
