"""The JSON control API under /_control/: faults, request log, reset, config, clock and cache warm-up."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sandbox.faults import ONE_SHOT, FaultError, validate

if TYPE_CHECKING:
    from sandbox.server import Request, Response, SandboxState


def handle(state: SandboxState, req: Request) -> Response:
    from sandbox.server import Response, json_response

    path = req.path.rstrip("/") or "/"
    method = req.method
    if path == "/_control" and method == "GET":
        return json_response(200, _summary(state, req.base), indent=2)
    if path == "/_control/faults":
        if method == "GET":
            return json_response(200, {"faults": state.faults.to_json()})
        if method == "POST":
            body = req.json()
            if isinstance(body, list):
                return json_response(201, {"faults": [add_fault(state, spec) for spec in body]})
            if not isinstance(body, dict):
                raise FaultError("expected a JSON object (or a list of them)")
            return json_response(201, add_fault(state, body))
        if method == "DELETE":
            state.faults.clear()
            return json_response(200, {"faults": []})
    if path.startswith("/_control/faults/") and method == "DELETE":
        fault_id = path.rsplit("/", 1)[1]
        if fault_id.isdigit() and state.faults.remove(int(fault_id)):
            return Response(204)
        return json_response(404, {"error": f"no fault {fault_id}"})
    if path == "/_control/log":
        if method == "GET":
            since = req.arg("since", "0") or "0"
            if not since.isdigit():
                raise FaultError("since must be an entry id")
            return json_response(200, {"entries": state.log.entries(req.arg("provider"), int(since))})
        if method == "DELETE":
            state.log.clear()
            return json_response(200, {"entries": []})
    if path == "/_control/reset" and method == "POST":
        state.reset()
        return json_response(200, {"reset": True})
    if path == "/_control/clean" and method == "POST":
        state.clean()
        return json_response(200, {"clean": True})
    if path == "/_control/config":
        if method == "POST":
            body = req.json() or {}
            if not isinstance(body, dict):
                raise FaultError("expected a JSON object")
            state.config.update(body)
        if method in ("GET", "POST"):
            return json_response(200, vars(state.config))
    if path == "/_control/clock":
        if method == "POST":
            body = req.json() or {}
            if "advance" in body:
                state.clock_offset += float(body["advance"])
            elif "offset" in body:
                state.clock_offset = float(body["offset"])
            else:
                raise FaultError('expected {"advance": seconds} or {"offset": seconds}')
        if method in ("GET", "POST"):
            return json_response(200, _clock(state))
    if path == "/_control/warm" and method == "POST":
        body = req.json() or {}
        providers = body.get("providers") if isinstance(body, dict) else None
        specs = state.all_specs(providers)
        t0 = time.monotonic()
        state.cache.warm(specs)
        return json_response(200, {"files": len(set(specs)), "seconds": round(time.monotonic() - t0, 3)})
    return json_response(
        404 if method in ("GET", "POST", "DELETE") else 405, {"error": f"no control route {method} {path}"}
    )


def add_fault(state: SandboxState, spec: dict[str, Any]) -> dict[str, Any]:
    """Install a rule; the one-shot kinds without a count act at once on existing sessions or links."""
    clean = validate(spec)
    if clean["kind"] in ONE_SHOT and clean["count"] is None:
        affected = 0
        for provider in state.providers.values():
            if clean["provider"] in ("*", provider.name):
                affected += provider.expire(clean["kind"])
        return {"kind": clean["kind"], "provider": clean["provider"], "applied": True, "affected": affected}
    return state.faults.add(spec).to_json()


def _clock(state: SandboxState) -> dict[str, Any]:
    from sandbox.server import iso

    return {"offset": state.clock_offset, "now": iso(state.utcnow(), "milliseconds")}


def _summary(state: SandboxState, base: str) -> dict[str, Any]:
    return {
        "faults": state.faults.to_json(),
        "config": vars(state.config),
        "clock": _clock(state),
        "endpoints": {
            "GET /_control/faults": "active fault rules",
            "POST /_control/faults": "add a rule (or a list): {provider, kind, ...}",
            "DELETE /_control/faults": "remove every rule",
            "DELETE /_control/faults/{id}": "remove one rule",
            "GET /_control/log?provider=&since=": "request log entries",
            "DELETE /_control/log": "empty the log",
            "POST /_control/reset": "seeded data, faults, log, clock and config back to the start",
            "POST /_control/clean": "faults, clock and config back to the start (data and log kept)",
            "GET|POST /_control/config": "transcription_delay, session_ttl, link_ttl (seconds)",
            "GET|POST /_control/clock": '{"advance": s} or {"offset": s}: moves the sandbox clock',
            "POST /_control/warm": 'generate all audio now (optionally {"providers": [...]})',
        },
        "index": f"{base}/",
    }
