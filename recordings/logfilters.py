"""Logs that cannot leak secrets: credentials, session ids, signed links and URL queries are redacted from every line.

`RedactSecretsFilter` sits on the root handler (settings.LOGGING), so it sees every record that reaches the log,
urllib3's DEBUG lines with request paths and tracebacks included. Redaction is by pattern, not by value: it needs no
database and also covers secrets the portal never stored (a provider's session id, a signed link it handed back).
"""

from __future__ import annotations

import logging
import re

REDACTED = "<redacted>"

# Names whose value is a secret wherever they appear: `name=value`, `name: value`, `"name": "value"`.
SECRET_NAMES = (
    "password",
    "passwd",
    "pwd",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "api-key",
    "apikey",
    "x-api-key",
    "secret",
    "client_secret",
    "signature",
    "sig",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "credential",
    "sessionid",
    "session_id",
    "cookie",
    "set-cookie",
)
_NAMES = "|".join(re.escape(name) for name in sorted(SECRET_NAMES, key=len, reverse=True))
# An Authorization header (or its key in a dict's repr): its scheme and credentials (AWS4's further parts, such as
# Signature=, are named secrets below).
_AUTHORIZATION = re.compile(r"""(?i)(\b(?:proxy-)?authorization['"]?\s*[:=]\s*['"]?)(?:[a-z0-9-]+\s+)?[^\s'",}]+""")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
# name=value in a query or form body, name: value in a header, "name": "value" in JSON or a dict's repr. The name
# must not be glued to a preceding word character, so `csrfmiddlewaretoken` or `design` are left alone.
_NAMED = re.compile(rf"""(?i)(?<![\w-])((?:{_NAMES})['"]?\s*[:=]\s*['"]?)[^\s&'",;}}\]]+""")
# user:password@ in a URL.
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s@'\"<>]+@")
# The query of a URL or of an absolute path (`GET /media/1.mp4?sig=... HTTP/1.1`): signed links carry their
# credentials there, and a portal URL's query may hold what a user searched for.
_QUERY = re.compile(r"""((?:\b[a-z][a-z0-9+.-]*://|(?:(?<=[\s'"(=<\[,])|^)/)[^\s?#'"<>]*)\?[^\s'"<>#]+""", re.I | re.M)


def redact_secrets(text: str) -> str:
    """`text` with credential values, URL userinfo and URL queries replaced by <redacted>."""
    if not text:
        return text
    text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    text = _QUERY.sub(rf"\1?{REDACTED}", text)
    text = _AUTHORIZATION.sub(rf"\1{REDACTED}", text)
    text = _BEARER.sub(rf"\1{REDACTED}", text)
    return _NAMED.sub(rf"\1{REDACTED}", text)


class RedactSecretsFilter(logging.Filter):
    """Redact the formatted message, the traceback and the stack of every record; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the template, drop the arguments
            message = str(record.msg)
        record.msg, record.args = redact_secrets(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_secrets(record.stack_info)
        return True
