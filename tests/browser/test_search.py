"""Search in the browser: typing and filters update the results in place, the URL follows, back restores."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .helpers import screenshot


def calls(n: int) -> re.Pattern:
    """The count line for n calls. A count has a time budget of its own (search.COUNT_BUDGET, 20 ms) and says
    "Many calls" when the database takes longer, which a loaded CI machine sometimes makes it; the rows are
    checked exactly either way."""
    return re.compile(rf"^({n} call{'' if n == 1 else 's'}|Many calls)$")


def test_it_updates_the_results_as_you_type_and_filter_and_back_restores_the_previous_view(open_as, portal):
    (total,) = portal.query("SELECT count(*) FROM recordings_call")[0]
    (kaleyra,) = portal.query("SELECT count(*) FROM recordings_call WHERE provider = 'kaleyra'")[0]
    agent = portal.query(
        "SELECT agent FROM recordings_call WHERE provider = 'kaleyra' AND agent != '' "
        "GROUP BY agent ORDER BY count(*) DESC, agent LIMIT 1"
    )[0][0]
    term = agent.split(".")[0]  # "vikram" of "vikram.rao"
    (matching,) = portal.query(
        "SELECT count(*) FROM recordings_call WHERE provider = 'kaleyra' AND search_text LIKE ?", (f"%{term}%",)
    )[0]
    assert 0 < matching < kaleyra

    page = open_as("supervisor")
    page.goto("/calls/")
    count = page.locator("#result-count")
    rows = page.locator("#results tbody tr")
    search_box = page.get_by_label("Search", exact=True)
    provider = page.get_by_label("Provider")
    expect(count).to_have_text(calls(total))
    expect(rows).to_have_count(25)
    expect(rows.locator(".badge").filter(has_text="Kaleyra").first).to_be_visible()
    expect(rows.locator(".badge").filter(has_text="Truto").first).to_be_visible()
    screenshot(page, "search")
    page.evaluate("window.stillTheSamePage = true")

    provider.select_option("kaleyra")
    expect(page).to_have_url(re.compile(r"/calls/\?provider=kaleyra$"))
    expect(count).to_have_text(calls(kaleyra))
    expect(rows.locator(".badge")).to_have_text(["Kaleyra"] * min(kaleyra, 25))

    search_box.press_sequentially(term, delay=40)  # no Enter: the form searches as you type
    expect(page).to_have_url(re.compile(rf"/calls/\?(?=.*\bq={term}(&|$))(?=.*\bprovider=kaleyra(&|$))"))
    expect(count).to_have_text(calls(matching))
    expect(rows).to_have_count(matching)
    column = [h.strip() for h in page.locator("#results thead th").all_inner_texts()].index("Agent") + 1
    for agent_cell in rows.locator(f"td:nth-child({column})").all():
        expect(agent_cell).to_contain_text(term)
    assert page.evaluate("window.stillTheSamePage === true"), "the page reloaded instead of swapping the results"

    page.go_back()
    expect(page).to_have_url(re.compile(r"/calls/\?provider=kaleyra$"))
    expect(count).to_have_text(calls(kaleyra))
    expect(rows).to_have_count(min(kaleyra, 25))
    expect(search_box).to_have_value("")
    expect(provider).to_have_value("kaleyra")

    page.go_back()
    expect(page).to_have_url(re.compile(r"/calls/$"))
    expect(count).to_have_text(calls(total))
    expect(provider).to_have_value("")

    page.go_forward()
    expect(page).to_have_url(re.compile(r"/calls/\?provider=kaleyra$"))
    expect(count).to_have_text(calls(kaleyra))
    expect(provider).to_have_value("kaleyra")
