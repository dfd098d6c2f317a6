"""The pieces of a sync that need no provider: the prefetch thread and Bandwidth's choice of windows."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from recordings.providers.bandwidth import TARGET, _narrower
from recordings.providers.errors import UpstreamError
from recordings.services.sync import prefetched


def failing_after(n: int):
    yield from range(n)
    raise UpstreamError("Could not connect to Bandwidth, try again.")


def test_it_hands_over_every_item_in_order():
    assert list(prefetched(iter(range(1234)), ahead=300, chunk=100)) == list(range(1234))


def test_what_was_listed_before_a_failure_arrives_before_the_failure():
    received = []
    with pytest.raises(UpstreamError):
        for item in prefetched(failing_after(250), chunk=100):  # 50 of them in a list not yet full
            received.append(item)
    assert received == list(range(250))


def test_a_consumer_that_stops_early_stops_the_thread():
    items = prefetched(iter(range(100_000)), ahead=200, chunk=10)
    assert next(items) == 0
    items.close()  # the producer, blocked on the full queue, must give up
    assert not [t for t in threading.enumerate() if t.name == "sync-prefetch" and t.is_alive()]


START = datetime(2026, 10, 1, tzinfo=UTC)


def listed(starts: list[datetime]) -> list[dict]:
    return [{"startTime": moment.isoformat().replace("+00:00", "Z")} for moment in starts]


def test_a_full_answer_in_start_order_is_cut_at_its_target_th_recording():
    starts = [START + timedelta(days=300, seconds=i) for i in range(1000)]  # all at the end of a year
    width = _narrower(listed(starts), START, START + timedelta(days=365))
    assert width == starts[TARGET] - START  # far more than half: the answer shows where the recordings are


def test_a_full_answer_in_another_order_halves_the_window_at_least():
    starts = [START + timedelta(days=300, seconds=i) for i in range(1000)]
    starts[0], starts[-1] = starts[-1], starts[0]
    assert _narrower(listed(starts), START, START + timedelta(days=365)) == timedelta(days=365) / 2
    early = [START + timedelta(seconds=i) for i in reversed(range(1000))]
    assert _narrower(listed(early), START, START + timedelta(days=1)) == timedelta(seconds=TARGET)


def test_an_answer_it_cannot_read_halves_the_window():
    assert _narrower([{"startTime": None}] * 1000, START, START + timedelta(hours=2)) == timedelta(hours=1)
