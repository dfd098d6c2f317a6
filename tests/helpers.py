"""Constants shared by test packages."""

from __future__ import annotations

from recordings.providers import REGISTRY, RetryPolicy

PROVIDERS = list(REGISTRY)
# Quick retries in tests: the behaviour is the same, the waits are shorter.
FAST = RetryPolicy(attempts=3, backoff=0.05, max_retry_after=5.0)


def a_recording(account, *, longest: bool = False):
    """An available recording of the account longer than 20 s: the shortest, or the longest."""
    from recordings.models import Recording

    qs = Recording.objects.filter(account=account, status="available", duration__gt=20)
    return qs.order_by("-duration" if longest else "duration").first()
