"""Pub/Sub topics and subscriptions: full paths from short names, created if missing (idempotent)."""

from __future__ import annotations

from gcpipe.core.errors import GcpipeError

ACK_DEADLINE = 60  # seconds a pulled message may wait for its acknowledgement before Pub/Sub resends it


def path(project: str, kind: str, name: str) -> str:
    """``projects/P/topics/name`` (or ``.../subscriptions/name``); a full path is returned as it is."""
    return name if name.startswith("projects/") else f"projects/{project}/{kind}/{name}"


def ensure_topic(publisher, topic: str) -> str:
    from google.api_core.exceptions import AlreadyExists, InvalidArgument

    try:
        publisher.create_topic(name=topic)
    except AlreadyExists:
        pass
    except InvalidArgument:
        raise GcpipeError(
            f"{topic} is not a valid topic name (3-255 letters, digits, - _ . ~ + %)."
        ) from None
    return topic


def ensure_subscription(subscriber, subscription: str, topic: str) -> str:
    from google.api_core.exceptions import AlreadyExists, InvalidArgument, NotFound

    try:
        subscriber.create_subscription(name=subscription, topic=topic, ack_deadline_seconds=ACK_DEADLINE)
    except AlreadyExists:
        pass
    except NotFound:
        raise GcpipeError(
            f"topic {topic} does not exist: publish to it first (gcpipe rides publish)."
        ) from None
    except InvalidArgument:
        raise GcpipeError(f"{subscription} is not a valid subscription name.") from None
    return subscription
