"""How long to wait before trying again what failed: deliveries, pings and subscription requests."""

from __future__ import annotations

from feedhub.limits import RETRY_FIRST_SECONDS, RETRY_FOR_SECONDS, RETRY_MAX_SECONDS


def backoff(attempts: int) -> float:
    """The wait after `attempts` failures in a row: doubling from RETRY_FIRST_SECONDS up to
    RETRY_MAX_SECONDS."""
    return float(min(RETRY_FIRST_SECONDS * 2 ** (attempts - 1), RETRY_MAX_SECONDS))


def next_try(attempts: int, first_due: float, now: float) -> float | None:
    """When to try a delivery or ping again after `attempts` failures; None once that would be
    more than RETRY_FOR_SECONDS after it was first due (it is dropped)."""
    delay = backoff(attempts)
    return now + delay if now + delay - first_due <= RETRY_FOR_SECONDS else None
