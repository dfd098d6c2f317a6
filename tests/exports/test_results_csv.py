"""The search results as CSV: every row of the search, streamed, cells safe from spreadsheet formulas."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from recordings.models import AuditEvent, Call

pytestmark = pytest.mark.django_db


def read_csv(response) -> list[dict]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="calls_')
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(body[1:])))


def test_every_row_of_the_search_across_pages(account, clients):
    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    Call.objects.bulk_create(
        Call(account=account, provider="bandwidth", remote_id=f"c-{n}", direction="inbound", from_number="+15550100000",
             to_number=f"+1555011{n:04d}", started_at=start + dt.timedelta(minutes=n % 700), duration=n % 300)
        for n in range(1200)
    )  # fmt: skip
    Call.objects.create(account=account, provider="bandwidth", remote_id="other", direction="outbound",
                        started_at=start, duration=10)  # fmt: skip
    expected = Call.objects.filter(direction="inbound")  # more than one of the CSV's internal pages (500)
    rows = read_csv(clients["exporter"].get("/calls/export.csv?direction=inbound"))
    assert sorted(int(row["call_id"]) for row in rows) == sorted(expected.values_list("pk", flat=True))
    newest = expected.order_by("-started_at", "-id").first()
    assert int(rows[0]["call_id"]) == newest.pk  # in the search's order
    assert rows[0]["account"] == newest.account.name and rows[0]["remote_id"] == newest.remote_id
    assert AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT, details__format="csv").count() == 1


def test_cells_cannot_become_formulas(call, clients):
    Call.objects.filter(pk=call.pk).update(agent="=1+2", campaign="@A1", from_number="+15550102030",
                                           remote_id="\tcmd")  # fmt: skip
    rows = read_csv(clients["exporter"].get("/calls/export.csv"))
    assert rows[0]["agent"] == "'=1+2" and rows[0]["campaign"] == "'@A1"
    assert rows[0]["from_number"] == "'+15550102030" and rows[0]["remote_id"] == "'\tcmd"


def test_permissions_and_invalid_filters(call, clients):
    assert clients["supervisor"].get("/calls/export.csv").status_code == 403
    assert clients["anonymous"].get("/calls/export.csv").status_code == 302
    response = clients["exporter"].get("/calls/export.csv?min_duration=soon")
    assert response.status_code == 400 and b"min_duration" in response.content
