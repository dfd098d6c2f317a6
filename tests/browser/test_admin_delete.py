"""The admin action in the browser: delete a Bandwidth recording at the provider, confirm, follow the job."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .helpers import screenshot


def test_an_admin_deletes_a_bandwidth_recording_at_the_provider_and_follows_the_job(open_as, demo, portal, sandbox):
    recording, remote_id, call = demo.to_delete
    since = sandbox.last_log_id()
    page = open_as("admin")
    page.goto(f"/admin/recordings/recording/?q={remote_id}")
    row = page.locator("#result_list tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td.field-status")).to_have_text("Available")

    row.locator(f'input[name="_selected_action"][value="{recording}"]').check()
    page.locator('select[name="action"]').select_option(label="Delete at the provider (whole recording)…")
    page.get_by_role("button", name="Go").click()

    # The confirmation page: what will happen, per provider; nothing has happened yet.
    expect(page.get_by_role("heading", level=1)).to_have_text("Are you sure?")
    expect(page.locator("#content-main")).to_contain_text("1 recording(s) will be deleted at the provider")
    plan = page.locator("section.provider-plan")
    expect(plan).to_have_count(1)
    expect(plan.locator(".will-do")).to_have_text("Will delete: 1")
    expect(plan.locator(".refused")).to_have_count(0)
    assert portal.query("SELECT count(*) FROM recordings_job WHERE kind = 'delete'") == [(0,)]
    screenshot(page, "admin-confirm")
    page.get_by_role("button", name=re.compile(r"^Yes, I.m sure$")).click()

    # Back on the list with a message linking to the job; the job page follows it to the end.
    message = page.locator("ul.messagelist li")
    expect(message).to_contain_text("Delete at provider queued for 1 item(s)")
    message.get_by_role("link", name=re.compile(r"^follow job #\d+$")).click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Delete at provider · job #\d+$"))
    expect(page.locator("#job-progress .job-status")).to_have_text("Succeeded", timeout=30_000)
    expect(page.locator("#job-progress")).to_contain_text("1 of 1 done.")
    expect(page.locator("#job-progress progress")).to_have_attribute("value", "1")
    item = page.locator("#job-progress tr.job-item")
    expect(item).to_have_count(1)
    expect(item.locator("td").nth(1)).to_have_text("Done")
    expect(item.locator("td").nth(2)).to_have_text(re.compile(r"^Deleted .* at Bandwidth"))
    expect(item).to_have_class(re.compile(r"\bjob-item-succeeded\b"))
    screenshot(page, "admin-job")

    # The provider was asked, once, and the recording's status says so in the admin and on the call page.
    deletes = [e for e in sandbox.log("bandwidth", since=since) if e["method"] == "DELETE" and remote_id in e["path"]]
    assert len(deletes) == 1 and deletes[0]["status"] < 300, deletes
    page.goto(f"/admin/recordings/recording/?q={remote_id}")
    expect(page.locator("#result_list tbody tr td.field-status")).to_have_text("Deleted")
    page.goto(f"/calls/{call}/")
    player = page.locator(f'section[data-player][data-recording-id="{recording}"]')
    expect(player.locator(".player-unavailable")).to_have_text("This recording is not available: deleted.")
    expect(player.locator("audio")).to_have_count(0)
    assert page.request.get(f"/recordings/{recording}/audio").status == 410
