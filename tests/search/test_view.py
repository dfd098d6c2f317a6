"""/calls/: permission, the page with and without htmx, errors inline, escaping, links and formats."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from .conftest import transcribe

URL = reverse("calls")


def test_anonymous_is_sent_to_login(clients):
    response = clients["anonymous"].get(URL, {"q": "x"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("role", ["supervisor", "exporter", "admin"])
def test_every_role_may_search(clients, make_call, role):
    make_call("seen", agent="Ada Lovelace")
    response = clients[role].get(URL, {"q": "lovelace"})
    assert response.status_code == 200
    assert "Ada Lovelace" in response.content.decode()


def test_a_user_without_the_permission_is_refused(db):
    client = Client()
    client.force_login(get_user_model().objects.create_user("nobody", password="pw"))
    assert client.get(URL).status_code == 403


def test_the_page_works_without_javascript(clients, make_call):
    make_call("one")
    html = clients["supervisor"].get(URL).content.decode()
    form = re.search(r'<form id="search-form"[^>]*>', html).group(0)
    assert 'method="get"' in form and f'action="{URL}"' in form
    assert '<button type="submit" class="primary">Search</button>' in html
    # A label for every input, and the live region that announces the count.
    for name in re.findall(r'<(?:input|select)[^>]*name="([^"]+)"', html):
        if name not in ("csrfmiddlewaretoken", "cursor"):
            assert f'for="id_{name}"' in html, name
    assert re.search(r'id="result-count"[^>]*aria-live="polite"[^>]*>1 call<', html)


def test_htmx_gets_only_the_results_and_the_url_to_push(clients, make_call):
    make_call("one", agent="Ada Lovelace")
    response = clients["supervisor"].get(
        URL, {"q": "lovelace", "provider": "", "agent": "", "sort": "-started"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and '<form id="search-form"' not in html
    assert html.lstrip().startswith('<section id="results"')
    assert '<p id="result-count" hx-swap-oob="innerHTML">1 call</p>' in html
    assert 'id="id_q_errors" hx-swap-oob="innerHTML"' in html
    assert response["HX-Push-Url"] == f"{URL}?q=lovelace"
    assert "HX-Request" in response["Vary"]


def test_a_history_restore_gets_the_whole_page(clients, make_call):
    response = clients["supervisor"].get(URL, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in response.content.decode()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"date_from": "garbage"}, "“garbage” is not a date"),
        ({"min_duration": "-5"}, "A duration cannot be negative."),
        ({"provider": "nope"}, "Select a valid choice. nope is not one of the available choices."),
        ({"cursor": "%%%"}, "This page link is damaged or out of date."),
        ({"q": "refund " * 40}, "Ensure this value has at most 200 characters"),
        ({"account": "abc"}, "Select a valid choice."),
        ({"number": "12"}, "Enter at least 3 digits."),
    ],
)
@pytest.mark.parametrize("htmx", [False, True])
def test_invalid_values_are_shown_inline_never_a_server_error(clients, make_call, params, message, htmx):
    make_call("one")
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = clients["supervisor"].get(URL, params, **headers)
    html = response.content.decode()
    assert response.status_code == 200
    assert message in html.replace("&#x27;", "'").replace("&quot;", '"')
    assert "Some filters are not valid" in html
    assert '<table class="results calls">' not in html
    field = next(iter(params))
    if field != "cursor":
        errors = re.search(rf'id="id_{field}_errors"[^>]*>(.*?)</div>', html, re.S).group(1)
        assert "errorlist" in errors
    if not htmx and field not in ("cursor", "account"):
        assert re.search(rf'<[^>]*name="{field}"[^>]*aria-invalid="true"', html)


def test_search_without_the_invalid_filters_is_offered(clients, make_call):
    make_call("one", agent="Ada Lovelace")
    html = clients["supervisor"].get(URL, {"q": "lovelace", "min_duration": "-5"}).content.decode()
    assert f'href="{URL}?q=lovelace"' in html


def test_provider_data_is_escaped(clients, make_call):
    make_call(
        "<b>id</b>", agent="<script>alert(1)</script>", campaign='"><img src=x onerror=alert(2)>',
        from_number="<i>555</i>",
    )  # fmt: skip
    html = clients["supervisor"].get(URL).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert "&lt;i&gt;555&lt;/i&gt;" in html
    assert "<script>alert" not in html and "<img src=x" not in html and "<i>555" not in html


def test_rows_link_to_the_call_page_with_the_search(clients, make_call):
    calls = [make_call(f"c{n:02d}", minutes=n, agent="Ada Lovelace") for n in range(27)]
    client = clients["supervisor"]
    html = client.get(URL, {"q": "lovelace", "provider": "bandwidth"}).content.decode()
    assert f'href="/calls/{calls[-1].pk}/?q=lovelace&amp;provider=bandwidth"' in html
    next_url = re.search(r'href="([^"]+)"[^>]*rel="next"', html).group(1).replace("&amp;", "&")
    assert 'hx-get="' + next_url.replace("&", "&amp;") + '"' in html
    second = client.get(next_url).content.decode()
    cursor = re.search(r"cursor=([^&\"]+)", next_url).group(1)
    assert f'href="/calls/{calls[1].pk}/?q=lovelace&amp;provider=bandwidth&amp;cursor={cursor}"' in second
    assert "27 calls" in second


def test_times_are_local_durations_are_clock_times_providers_are_badges(clients, make_call, settings):
    settings.PORTAL_TIME_ZONE = "Europe/London"
    make_call("one", provider="kaleyra", duration=65.4)  # BASE is 12:00 UTC = 13:00 in London (BST)
    make_call("two", provider="ameyo", duration=3725.0, minutes=1)
    html = clients["supervisor"].get(URL).content.decode()
    assert "1 Oct 2026, 13:00" in html
    assert 'datetime="2026-10-01T13:00:00+01:00"' in html
    assert ">1:05<" in html and ">1:02:05<" in html
    assert '<span class="badge provider-kaleyra">Kaleyra</span>' in html


def test_empty_states(clients, make_call):
    client = clients["supervisor"]
    assert "No calls yet" in client.get(URL).content.decode()
    make_call("one", agent="Ada Lovelace")
    html = client.get(URL, {"agent": "nobody"}).content.decode()
    assert "No calls match" in html and f'href="{URL}">Clear filters</a>' in html


def test_transcript_words_through_the_page(clients, make_call):
    call = make_call("spoken")
    make_call("quiet", minutes=1)
    transcribe(call, "The engineer never turned up for the installation.")
    html = clients["supervisor"].get(URL, {"q": "installation"}).content.decode()
    assert "1 call<" in html and f"/calls/{call.pk}/" in html
