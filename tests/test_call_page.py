"""The call page: previous and next calls within the search it was opened from."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse

from recordings.models import Call


def make_calls(account, n: int) -> list[Call]:
    start = dt.datetime(2026, 10, 1, 9, 0, tzinfo=dt.UTC)
    return [
        Call.objects.create(
            account=account,
            provider=account.provider,
            remote_id=f"c-{i}",
            direction="inbound",
            agent="Ada" if i % 2 else "Bob",
            started_at=start + dt.timedelta(minutes=i),
            duration=60,
        )
        for i in range(n)
    ]


def test_previous_and_next_follow_the_search(clients, account):
    calls = make_calls(account, 6)
    ada = [c for c in calls if c.agent == "Ada"]  # c-1, c-3, c-5; newest first: c-5, c-3, c-1
    page = clients["supervisor"].get(reverse("call_detail", args=[ada[1].pk]), {"agent": "Ada"}).content.decode()
    assert f'href="{reverse("call_detail", args=[ada[2].pk])}?agent=Ada" rel="prev"' in page
    assert f'href="{reverse("call_detail", args=[ada[0].pk])}?agent=Ada" rel="next"' in page
    assert f'href="{reverse("calls")}?agent=Ada"' in page


def test_the_ends_of_the_results_say_so(clients, account):
    calls = make_calls(account, 3)
    newest = clients["supervisor"].get(reverse("call_detail", args=[calls[-1].pk]), {"direction": "inbound"})
    assert "First of the results" in newest.content.decode()
    oldest = clients["supervisor"].get(reverse("call_detail", args=[calls[0].pk]), {"direction": "inbound"})
    assert "Last of the results" in oldest.content.decode()


def test_without_a_search_there_is_no_pager_and_bad_parameters_do_no_harm(clients, account):
    call = make_calls(account, 1)[0]
    assert 'rel="next"' not in clients["supervisor"].get(reverse("call_detail", args=[call.pk])).content.decode()
    response = clients["supervisor"].get(reverse("call_detail", args=[call.pk]), {"date_from": "garbage"})
    assert response.status_code == 200
