"""The call search page, /calls/ (ARCHITECTURE.md, Contract): thin; the work is in recordings/search.py."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import push_url
from django_htmx.middleware import HtmxDetails

from .search import CallSearchForm, display_zone, search_calls, search_links


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


@require_safe
@login_required
@permission_required("recordings.listen_recording", raise_exception=True)
@vary_on_headers("HX-Request")
def call_list(request: HtmxHttpRequest) -> HttpResponse:
    form = CallSearchForm(request.GET)
    with timezone.override(display_zone()):
        page = search_calls(search=form.search, cursor=form.position) if form.is_valid() else None
        # A history restore (back/forward with an empty cache) needs the whole page, not the results.
        partial = bool(request.htmx) and not request.htmx.history_restore_request
        template = "recordings/call_list.html#results" if partial else "recordings/call_list.html"
        context = {"form": form, "page": page, "links": search_links(form, page), "partial": partial}
        response = render(request, template, context)
    if partial:
        push_url(response, form.url(cursor=form.data.get("cursor") or None))
    return response
