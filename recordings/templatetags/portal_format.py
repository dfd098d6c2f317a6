"""Formatting filters for the portal's pages: `{% load portal_format %}`."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def duration(seconds) -> str:
    """Seconds as m:ss, or h:mm:ss from an hour; empty for no value."""
    if seconds is None or seconds == "":
        return ""
    try:
        total = max(0, round(float(seconds)))
    except (TypeError, ValueError, OverflowError):
        return ""
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
