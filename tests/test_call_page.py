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


def test_who_listened_shows_each_listener_how_often_and_when_last(clients, users, recording, settings):
    import datetime as dt

    from recordings.models import AuditEvent

    settings.PORTAL_TIME_ZONE = "Europe/London"
    page = clients["supervisor"].get(reverse("call_detail", args=[recording.call.pk])).content.decode()
    assert "Nobody has listened yet." in page

    def listened(user, when, action=AuditEvent.Action.PLAY):
        AuditEvent.objects.create(action=action, actor=user, actor_username=user.get_username(), created_at=when,
                                  target_type="recording", target_id=str(recording.pk))  # fmt: skip

    # Two listening sessions of the supervisor, one of the exporter, and a download (not a listen) by the admin.
    listened(users["supervisor"], dt.datetime(2026, 10, 2, 8, 15, tzinfo=dt.UTC))
    listened(users["supervisor"], dt.datetime(2026, 10, 3, 16, 45, tzinfo=dt.UTC))
    listened(users["exporter"], dt.datetime(2026, 10, 1, 12, 0, tzinfo=dt.UTC))
    listened(users["admin"], dt.datetime(2026, 10, 4, 12, 0, tzinfo=dt.UTC), AuditEvent.Action.DOWNLOAD)

    page = clients["supervisor"].get(reverse("call_detail", args=[recording.call.pk])).content.decode()
    panel = page[page.index("Who listened") :]
    supervisor = users["supervisor"].get_username()
    assert f"<strong>{supervisor}</strong> · 2 times, last" in panel
    assert "3 Oct 2026 17:45" in panel  # 16:45 UTC in London (BST)
    assert f"<strong>{users['exporter'].get_username()}</strong> · 1 time, last" in panel
    assert panel.index(supervisor) < panel.index(users["exporter"].get_username())  # the most recent first
    assert users["admin"].get_username() not in panel  # a download is not a listen


def test_the_call_page_shows_times_in_the_portal_zone_and_durations_as_m_ss(clients, call, settings):
    settings.PORTAL_TIME_ZONE = "America/New_York"
    page = clients["supervisor"].get(reverse("call_detail", args=[call.pk])).content.decode()
    assert "1 Oct 2026, 05:30" in page  # 09:30 UTC
    assert "<dt>Duration</dt><dd>1:05</dd>" in page


def test_the_transcript_panel_labels_speakers_times_and_escapes_provider_text(clients, recording):
    from recordings.models import Transcript

    recording.status = "available"
    recording.save()
    Transcript.objects.create(
        recording=recording,
        status="available",
        segments=[
            {"speaker": "Agent", "start": 0.0, "end": 4.2, "text": "Hello, how can I help?"},
            {"speaker": "<b>Customer</b>", "start": 65.4, "end": 70.0, "text": "<script>alert(1)</script> my bill"},
        ],
    )
    page = clients["supervisor"].get(reverse("call_detail", args=[recording.call.pk])).content.decode()
    assert page.count("data-segment ") == 2
    assert 'data-start="65.4"' in page  # what a click seeks to
    assert ">1:05</time>" in page and ">0:00</time>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; my bill" in page and "<script>alert(1)" not in page
    assert "&lt;b&gt;Customer&lt;/b&gt;" in page and "<b>Customer</b>" not in page
