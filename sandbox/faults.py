"""Fault rules (latency, status, dropped or slow bodies, expired sessions and links) and the --fault syntax."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.data import PROVIDERS

# kind -> (its main parameter, the default count: None means "until cleared")
KINDS: dict[str, tuple[str | None, int | None]] = {
    "latency": ("ms", None),
    "status": ("status", 1),
    "drop_after": ("bytes", 1),
    "slow_body": ("bytes_per_second", None),
    "expire_sessions": (None, None),
    "expire_links": (None, None),
}
ONE_SHOT = ("expire_sessions", "expire_links")  # without a count they act once, on what exists now
LINK_PROVIDERS = ("kaleyra", "envoy")


class FaultError(ValueError):
    """An invalid fault specification (answered 400 by the control API, or a CLI usage error)."""


@dataclass
class Fault:
    id: int
    provider: str  # a provider name, or "*" for all
    kind: str
    params: dict[str, Any]
    path_contains: str | None = None
    remaining: int | None = None  # None: applies until cleared

    def matches(self, provider: str, path: str) -> bool:
        return (self.provider in ("*", provider)) and (not self.path_contains or self.path_contains in path)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "kind": self.kind,
            **self.params,
            "path_contains": self.path_contains,
            "remaining": self.remaining,
        }


def validate(spec: dict[str, Any]) -> dict[str, Any]:
    """Normalise a fault spec: {"provider", "kind", its parameter, optional count, retry_after, path_contains}."""
    spec = dict(spec)
    provider = spec.pop("provider", None)
    kind = spec.pop("kind", None)
    if provider not in (*PROVIDERS, "*"):
        raise FaultError(f"provider must be one of {', '.join(PROVIDERS)} or '*', not {provider!r}")
    if kind not in KINDS:
        raise FaultError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    main, default_count = KINDS[kind]
    params: dict[str, Any] = {}
    if main is not None:
        if main not in spec:
            raise FaultError(f"{kind} needs {main}")
        params[main] = _number(spec.pop(main), main)
    count = spec.pop("count", default_count)
    if count is not None:
        count = int(_number(count, "count"))
        if count < 1:
            raise FaultError("count must be at least 1")
    path_contains = spec.pop("path_contains", None)
    if kind == "status":
        status = int(params["status"])
        if not 400 <= status <= 599:
            raise FaultError("status must be a 4xx or 5xx code")
        params["status"] = status
        retry_after = spec.pop("retry_after", 1 if status in (429, 503) else None)
        if retry_after is not None:
            params["retry_after"] = int(_number(retry_after, "retry_after"))
        if "message" in spec:
            params["message"] = str(spec.pop("message"))
    elif kind == "latency" and params["ms"] < 0:
        raise FaultError("ms must not be negative")
    elif kind == "drop_after":
        params["bytes"] = int(params["bytes"])
        if params["bytes"] < 0:
            raise FaultError("bytes must not be negative")
    elif kind == "slow_body" and params["bytes_per_second"] <= 0:
        raise FaultError("bytes_per_second must be positive")
    elif kind == "expire_sessions" and provider not in ("ameyo", "*"):
        raise FaultError("expire_sessions applies to ameyo (the only provider with sessions)")
    elif kind == "expire_links" and provider not in (*LINK_PROVIDERS, "*"):
        raise FaultError("expire_links applies to kaleyra and envoy (the providers that hand out links)")
    if spec:
        raise FaultError(f"unknown parameter(s) for {kind}: {', '.join(sorted(spec))}")
    return {"provider": provider, "kind": kind, "params": params, "count": count, "path_contains": path_contains}


def _number(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FaultError(f"{name} must be a number, not {value!r}") from None
    return int(number) if number.is_integer() else number


def parse_cli(text: str) -> dict[str, Any]:
    """`PROVIDER:KIND[=VALUE][,key=value...]`, e.g. `bandwidth:status=429,count=3,retry_after=2`."""
    provider, sep, rest = text.partition(":")
    if not sep or not rest:
        raise FaultError(f"--fault {text!r}: expected PROVIDER:KIND[=VALUE][,key=value...]")
    first, *others = rest.split(",")
    kind, eq, value = first.partition("=")
    spec: dict[str, Any] = {"provider": provider.strip(), "kind": kind.strip()}
    main = KINDS.get(kind.strip(), (None, None))[0]
    if eq:
        if main is None:
            raise FaultError(f"--fault {text!r}: {kind} takes no value")
        spec[main] = value
    for item in others:
        key, eq, value = item.partition("=")
        if not eq:
            raise FaultError(f"--fault {text!r}: expected key=value, got {item!r}")
        spec[key.strip()] = value.strip()
    return spec


class Faults:
    """The active rules; `take` finds the first matching rule of a kind and consumes one of its count."""

    def __init__(self) -> None:
        self._rules: list[Fault] = []
        self._lock = threading.Lock()
        self._next = 1

    def add(self, spec: dict[str, Any]) -> Fault:
        clean = validate(spec)
        with self._lock:
            fault = Fault(
                self._next, clean["provider"], clean["kind"], clean["params"], clean["path_contains"], clean["count"]
            )
            self._next += 1
            self._rules.append(fault)
            return fault

    def take(
        self, kind: str, provider: str | None, path: str, applies: Callable[[Fault], bool] | None = None
    ) -> Fault | None:
        if provider is None:
            return None
        with self._lock:
            for fault in self._rules:
                if fault.kind == kind and fault.matches(provider, path) and (applies is None or applies(fault)):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._rules.remove(fault)
                    return fault
        return None

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [f for f in self._rules if f.id != fault_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def to_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._rules]
