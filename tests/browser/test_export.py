"""Exports in the browser: an exporter ticks calls or exports a search, watches the progress, opens the ZIP."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from .helpers import screenshot, wait_for

PROGRESS = """() => {
  const bar = document.getElementById("export-progress");
  return {value: bar && bar.value, max: bar && bar.max, done: !!document.getElementById("export-download")};
}"""


def recordings_of(portal, calls: list[int]) -> set[int]:
    marks = ",".join("?" * len(calls))
    rows = portal.query(f"SELECT id FROM recordings_recording WHERE call_id IN ({marks})", tuple(calls))
    return {pk for (pk,) in rows}


def export_and_download(page: Page, button: str, tmp_path: Path, expected_steps: int) -> Path:
    """Press the export button, watch the progress bar to its end, download the ZIP; the file's path."""
    page.get_by_role("button", name=button).click()
    expect(page).to_have_url(re.compile(r"/exports/\d+/$"))
    seen = []

    def finished(progress: dict) -> bool:
        seen.append(progress)
        return progress["done"]

    wait_for(page, PROGRESS, finished, "the export did not finish", timeout=60)
    values = [p["value"] for p in seen if p["max"]]
    assert values == sorted(values), f"the progress bar went backwards: {values}"
    assert seen[-1]["value"] == seen[-1]["max"] == expected_steps, seen[-1]  # one step per recording, then the ZIP
    expect(page.locator("#export-progress")).to_have_attribute("value", str(expected_steps))

    with page.expect_download() as info:
        page.locator("#export-download").click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename.endswith(".zip"), download.suggested_filename
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    return path


def check_archive(page: Page, portal, path: Path, recordings: set[int]) -> None:
    """The ZIP opens, holds one audio file per recording (the bytes the portal serves), and manifests that say so."""
    marks = ",".join("?" * len(recordings))
    calls = {
        pk
        for (pk,) in portal.query(f"SELECT call_id FROM recordings_recording WHERE id IN ({marks})", tuple(recordings))
    }
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        names = set(archive.namelist())
        assert {"manifest.csv", "manifest.json", "README.txt"} <= names, names
        assert "errors.csv" not in names
        with archive.open("manifest.csv") as raw:
            manifest = list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8-sig")))
        assert len(manifest) == len(recordings)
        assert {int(row["recording_id"]) for row in manifest} == recordings
        assert {int(row["call_id"]) for row in manifest} == calls
        assert {row["file"] for row in manifest} <= names
        for row in manifest:
            data = archive.read(row["file"])
            assert len(data) == int(row["size_bytes"]) > 1000, row
            assert hashlib.sha256(data).hexdigest() == row["sha256"], row["file"]
            served = page.request.get(f"/recordings/{row['recording_id']}/download")
            assert served.ok and served.body() == data, row["file"]
        details = json.loads(archive.read("manifest.json"))
        assert [r["sha256"] for r in details["recordings"]] == [row["sha256"] for row in manifest]
        assert details["errors"] == []
        assert f"{len(recordings)} audio file" in archive.read("README.txt").decode()


def test_an_exporter_exports_the_ticked_calls_watches_the_progress_and_opens_the_zip(open_as, portal, tmp_path):
    calls = [
        pk
        for (pk,) in portal.query(
            "SELECT c.id FROM recordings_call c WHERE c.provider = 'envoy' "
            "AND EXISTS (SELECT 1 FROM recordings_recording r WHERE r.call_id = c.id) "
            "AND NOT EXISTS (SELECT 1 FROM recordings_recording r WHERE r.call_id = c.id AND r.status != 'available') "
            "ORDER BY c.started_at DESC LIMIT 2"
        )
    ]
    recordings = recordings_of(portal, calls)
    page = open_as("exporter")
    page.goto("/calls/?provider=envoy")
    for call in calls:
        page.locator(f'#results input[type="checkbox"][name="call"][value="{call}"]').check()

    path = export_and_download(page, "Export selected", tmp_path, len(recordings) + 1)
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Export #\d+$"))
    expect(page.locator("#export-status")).to_contain_text(f"{len(recordings)} recording")
    screenshot(page, "export")
    check_archive(page, portal, path, recordings)


def test_an_exporter_exports_everything_a_search_matches_and_its_csv(open_as, portal, tmp_path):
    (latest,) = portal.query("SELECT max(started_at) FROM recordings_call WHERE provider = 'ameyo'")[0]
    day = datetime.fromisoformat(latest).replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo("Europe/London")).date()
    page = open_as("exporter")
    page.goto("/calls/")
    page.get_by_label("Provider").select_option("ameyo")
    page.get_by_label("From", exact=True).fill(str(day - timedelta(days=6)))
    page.get_by_label("To", exact=True).fill(str(day))
    expect(page).to_have_url(re.compile(rf"date_to={day}"))
    expect(page.locator("#results tbody .badge").first).to_have_text("Ameyo")
    shown = [int(v) for v in page.locator('#results input[name="call"]').evaluate_all("els => els.map(e => e.value)")]
    assert 2 <= len(shown) < 25, shown  # one page of results: everything matching is on screen
    expect(page.locator("#result-count")).to_have_text(f"{len(shown)} calls")
    page.get_by_role("heading", level=1).click()  # out of the date field, for the picture
    screenshot(page, "search-export")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download results as CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8-sig"))))
    assert [int(row["call_id"]) for row in rows] == shown
    assert {row["provider"] for row in rows} == {"ameyo"}

    recordings = recordings_of(portal, shown)
    path = export_and_download(page, "Export all matching", tmp_path, len(recordings) + 1)
    check_archive(page, portal, path, recordings)
