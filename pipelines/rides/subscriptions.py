"""The pipeline's own subscription on the Pub/Sub emulator, rotated: a new one every ``ROTATE_SECONDS``.

The emulator (0.8.20) never forgets a message a subscription acknowledged (its backlog keeps every message
for ``seek``; nothing removes them), about 1 KiB each: 7 GB an hour at 2,000 msg/s, and with a capped Java
heap it dies of "Java heap space" within minutes. Deleting the subscription frees them. So a pipeline
that made its subscription for a topic (``--input_topic``, the local target) reads generations of it:
``<topic>-taxi-streaming`` first, then ``<topic>-taxi-streaming-<epoch seconds it was made>``.

A rotation makes the next generation, keeps pulling the old one until it is drained (a pull comes back
empty, or with only messages published after the new one existed: those are in both), waits until the old
one's pulled messages are acknowledged, and deletes it. Messages in the overlap arrive twice, with the same
event id, and the duplicate memory drops the second copy. A restarted pipeline reads every generation it
finds. A subscription the user gives (``--input_subscription``) is theirs: never rotated.
"""

from __future__ import annotations

import re
import time

from gcpipe.core import pubsub

ROTATE_SECONDS = 60.0


def _generation(base: str) -> re.Pattern:
    return re.compile(re.escape(base) + r"(?:-(\d{10}))?")


def made_at(base: str, subscription: str) -> float:
    """When a generation was made (the first, ``base`` itself: 0, as old as any)."""
    match = _generation(base).fullmatch(subscription)
    return float(match.group(1)) if match and match.group(1) else 0.0


def generations(publisher, topic: str, base: str) -> list[str]:
    """The generations of ``base`` subscribed to ``topic``, oldest first."""
    pattern = _generation(base)
    found = [name for name in publisher.list_topic_subscriptions(topic=topic) if pattern.fullmatch(name)]
    return sorted(found, key=lambda name: made_at(base, name))


def next_generation(subscriber, topic: str, base: str, after: str) -> str:
    """Make the generation after ``after`` (named by the second it is made, later than ``after``'s)."""
    moment = max(int(time.time()), int(made_at(base, after)) + 1)
    return pubsub.ensure_subscription(subscriber, f"{base}-{moment}", topic)
