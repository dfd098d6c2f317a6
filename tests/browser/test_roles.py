"""Roles in the browser: each logs in and sees its own navigation; a supervisor has no export, download or delete."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .helpers import PASSWORD

NAVIGATION = {
    "supervisor": ["Calls"],
    "exporter": ["Calls", "Exports"],
    "admin": ["Calls", "Exports", "Admin"],
}
HEADINGS = {"Calls": "Calls", "Exports": "Your exports", "Admin": "Accounts, calls, jobs and the audit log"}


def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


@pytest.mark.parametrize("role", list(NAVIGATION))
def test_it_logs_each_role_in_and_shows_only_its_navigation(open_as, portal, role):
    page = open_as(None)
    page.goto("/calls/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/calls/$"))
    log_in(page, role, "not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("correct username and password")

    log_in(page, role)
    expect(page).to_have_url(f"{portal.url}/calls/")
    expect(page.locator("header .who")).to_have_text(role)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(NAVIGATION[role])
    expect(nav.get_by_role("link", name="Calls")).to_have_attribute("aria-current", "page")

    # Every link it shows leads to a page the role may see.
    for label in NAVIGATION[role]:
        nav.get_by_role("link", name=label).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(HEADINGS[label])
        if label != "Admin":
            expect(page.get_by_role("navigation", name="Main").get_by_role("link")).to_have_text(NAVIGATION[role])

    page.goto("/calls/")
    page.get_by_role("button", name="Log out").click()
    page.goto("/calls/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/calls/$"))


def controls(page: Page, demo) -> dict[str, int]:
    """How many export, download and admin controls the role is shown on the search and call pages."""
    page.goto("/calls/?provider=bandwidth")
    expect(page.locator("#results tbody tr").first).to_be_visible()
    found = {
        "export form": page.locator("form#export-form").count(),
        "row checkboxes": page.locator('#results input[type="checkbox"][name="call"]').count(),
        "export buttons": page.get_by_role("button", name=re.compile(r"^Export (selected|all matching)$")).count(),
        "CSV link": page.get_by_role("link", name="Download results as CSV").count(),
        "admin link": page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").count(),
    }
    page.goto(f"/calls/{demo.playable['bandwidth'].call}/")
    expect(page.locator("[data-player][data-player-ready]").first).to_be_attached()
    found["download link"] = page.locator("a.player-download").count()
    return found


def test_it_shows_an_exporter_the_export_and_download_controls(open_as, demo):
    # The other side of the supervisor test below: the same selectors find every control for an exporter.
    found = controls(open_as("exporter"), demo)
    assert found.pop("row checkboxes") >= 2, found
    assert found == {"export form": 1, "export buttons": 2, "CSV link": 1, "admin link": 0, "download link": 1}, found


def test_it_shows_a_supervisor_no_export_download_or_delete_control_and_refuses_their_urls(open_as, demo, portal):
    page = open_as("supervisor")
    found = controls(page, demo)
    assert found == dict.fromkeys(found, 0), found
    recording = demo.playable["bandwidth"].recording

    for url in ["/exports/", f"/recordings/{recording}/download", "/calls/export.csv"]:
        response = page.goto(url)
        assert response.status == 403, (url, response.status)
        expect(page.get_by_role("heading", level=1)).to_have_text("You don't have access to this page")
    page.goto("/admin/recordings/recording/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/recordings/recording/$"))
    expect(page.get_by_text("You are authenticated as supervisor")).to_be_visible()

    # Nor can it post what the controls would have sent.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    headers = {"X-CSRFToken": token, "Referer": f"{portal.url}/calls/"}
    export = page.request.post("/exports/", form={"scope": "search"}, headers=headers, max_redirects=0)
    assert export.status == 403, export.status
    delete = page.request.post(
        "/admin/recordings/recording/",
        form={"action": "delete_at_provider", "_selected_action": str(recording), "post": "yes"},
        headers=headers,
        max_redirects=0,
    )
    assert delete.status == 302 and "/admin/login/" in delete.headers["location"], (delete.status, delete.headers)
    supervisor = demo.users["supervisor"]
    assert portal.query("SELECT count(*) FROM recordings_job WHERE created_by_id = ?", (supervisor,)) == [(0,)]
    assert portal.query("SELECT status FROM recordings_recording WHERE id = ?", (recording,)) == [("available",)]
