"""One error vocabulary for every provider; each error says whether it is permanent."""

from __future__ import annotations

import re

from ..logfilters import redact_secrets

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


def redact(text: str) -> str:
    """Strip URLs (signed links carry credentials in their query), named secrets (`password=...`, `Authorization:
    ...`) and paths' queries, and clip provider text."""
    return redact_secrets(_URL.sub("<url>", text or "")).strip()[:300]


class ProviderError(Exception):
    """A provider call failed. `message` is safe to show: no credential, no URL."""

    kind = "upstream"
    permanent = False
    default_message = "The provider returned an error."

    def __init__(
        self,
        message: str = "",
        *,
        provider: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = redact(message) or self.default_message
        self.provider = provider
        self.status = status
        self.retry_after = retry_after
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class AuthenticationFailed(ProviderError):
    kind = "auth"
    permanent = True
    default_message = "The provider refused the credentials."


class NotFound(ProviderError):
    kind = "not_found"
    permanent = True
    default_message = "The provider has no such item."


class Expired(ProviderError):
    kind = "expired"
    permanent = True
    default_message = "The provider says this item has expired."


class RateLimited(ProviderError):
    kind = "rate_limited"
    permanent = False
    default_message = "The provider is rate limiting us."


class NotSupported(ProviderError):
    kind = "not_supported"
    permanent = True
    default_message = "The provider cannot do this."


class UpstreamError(ProviderError):
    kind = "upstream"
    permanent = False
    default_message = "The provider had an error."


class UpstreamTimeout(UpstreamError):
    kind = "timeout"
    default_message = "The provider did not answer in time."


class Misconfigured(ProviderError):
    kind = "misconfigured"
    permanent = True
    default_message = "The account is not configured correctly."


class BlockedAddress(Misconfigured):
    """A URL the provider handed back points inside our network and is not allowed."""

    default_message = "The provider's media link points to a private address; it was not fetched."


class NotSupportedReport(NotSupported):
    """The provider's calls do not enter by report import."""


class RangeNotSatisfiable(ProviderError):
    """The provider answered 416 to a byte range; `total_size` is the size it reported, if any."""

    kind = "range"
    permanent = True
    default_message = "The requested range is not within the recording."

    def __init__(self, message: str = "", *, total_size: int | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.total_size = total_size
