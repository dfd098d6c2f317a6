"""Template context shared by every page: the navigation a user may see."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse


def navigation(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    items = []
    if user.has_perm("recordings.listen_recording"):
        items.append(("calls", "Calls", reverse("calls")))
    if user.has_perm("recordings.export_recordings"):
        items.append(("exports", "Exports", reverse("exports")))
    if user.is_staff:
        items.append(("admin", "Admin", reverse("admin:index")))
    return {"nav_items": items}
