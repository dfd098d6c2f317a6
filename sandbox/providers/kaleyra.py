"""Kaleyra.io voice recordings: a signed S3 link (download=0) or a 301 to it (download=1); the recording report."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sandbox.audio import AudioSpec
from sandbox.data import IST, KALEYRA_ID_LIFETIME, Recording
from sandbox.providers.base import LinkSigner, Provider, SignedLinks, s3_error
from sandbox.server import HttpError, Request, Response, json_response, serve_media

API_KEY = "A7f3c9e1b5d24a6f8c0e2b4d6f8a1c3e53"  # 002: alphanumeric, e.g. Axxxxxxxxxxxxx3
SID = "HXIN1759000071IN"  # 002: e.g. HXXXXXXX071US
BUCKET = "kaleyra-voice-recordings-in"
CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav"}  # 002: "resource link with MP3/WAV file"
REPORT_PATH = "/_reports/kaleyra.csv"
REPORT_COLUMNS = (
    "Call ID",
    "Caller Number",
    "Called Number",
    "Direction",
    "Start Time",
    "End Time",
    "Duration",
    "Status",
    "Agent",
    "Recording ID",
    "Recording Duration",
)
# 002 shows "RBC3XXX" for success and "RBC31XX" for failures; the exact numbers are [guess]
CODE_OK, CODE_INVALID_ID, CODE_EXPIRED, CODE_BAD_PARAM = "RBC3001", "RBC3101", "RBC3102", "RBC3103"
CODE_AUTH, CODE_FORBIDDEN = "RBC201", "RBC203"
MAX_VALIDITY = 7 * 24 * 60  # minutes: an S3 presigned URL lives at most seven days


class Kaleyra(SignedLinks, Provider):
    name = "kaleyra"
    prefix = "/kaleyra"
    report_path = REPORT_PATH
    report_filename = "kaleyra-voice-report.csv"
    report_columns = REPORT_COLUMNS

    def __init__(self, state: Any) -> None:
        self.signer = LinkSigner(f"kaleyra/{state.dataset.seed}")
        super().__init__(state)
        self._by_key = {self._key(r): r for r in self.data.recordings}

    def media_specs(self) -> list[AudioSpec]:
        cutoff = self.state.utcnow() - KALEYRA_ID_LIFETIME  # expired ids never serve audio
        return [r.audio for r in self.data.recordings if r.start >= cutoff]

    def routes(self):
        return [
            (("GET", "POST"), r"/v1/(?P<sid>[^/]+)/voice/recordings", self.recordings),
            (("GET",), rf"/_s3/{BUCKET}/(?P<key>.+)", self.object),
        ]

    @staticmethod
    def _key(rec: Recording) -> str:
        day = rec.start.astimezone(UTC)
        return f"recordings/{SID}/{day:%Y/%m/%d}/{rec.id.rstrip('=')}.{rec.fmt}"

    # --- errors: {code, message, data, error} (002 "Sample Failure Response"); S3 XML on the link itself ---

    def error(self, req: Request, status: int, message: str, **extra: Any) -> HttpError:
        if req.path.startswith(f"{self.prefix}/_s3/"):
            codes = {403: "AccessDenied", 404: "NoSuchKey", 429: "SlowDown", 503: "SlowDown"}
            return HttpError(s3_error(status, codes.get(status, "InternalError"), message))
        body = {
            "code": extra.pop("code", f"RBC{status}"),
            "message": message,
            "data": extra.pop("data", {}),
            "error": extra.pop("error", {"message": message}),
        }
        return HttpError(json_response(status, body))

    def _fail(
        self, req: Request, status: int, code: str, message: str, params: dict[str, str], field: str, detail: str
    ) -> HttpError:
        # 002 prints data as a list of "key": value pairs (not valid JSON); the sandbox sends an object
        return self.error(req, status, message, code=code, data=params, error={field: detail})

    # --- handlers ---

    def recordings(self, req: Request, m) -> Response:
        """POST (or GET) /v1/{SID}/voice/recordings with id, validity (minutes, default 5), download (0 or 1)."""
        if req.headers.get("api-key") is None:
            raise self.error(req, 401, "API key is missing", code=CODE_AUTH, error={"api-key": "api-key is required"})
        if req.headers.get("api-key") != API_KEY:
            raise self.error(req, 401, "Invalid API key", code=CODE_AUTH, error={"api-key": "Invalid api-key"})
        if m["sid"] != SID:
            raise self.error(
                req,
                403,
                "The API key does not belong to this SID",
                code=CODE_FORBIDDEN,
                error={"sid": f"Unknown SID {m['sid']}"},
            )
        params = {k: v[0] for k, v in req.query.items()}  # 002's curl sends id both in the URL and in the form
        content_type = (req.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type == "application/json":
            body = req.json()
            params.update({k: str(v) for k, v in (body or {}).items()} if isinstance(body, dict) else {})
        elif req.body:
            params.update(req.form())
        shown = {
            "id": params.get("id", ""),
            "validity": params.get("validity", "5"),
            "download": params.get("download", "0"),
        }
        validity, download = shown["validity"], shown["download"]
        if not validity.isdigit() or not 1 <= int(validity) <= MAX_VALIDITY:
            raise self._fail(
                req,
                400,
                CODE_BAD_PARAM,
                "Invalid validity",
                shown,
                "validity",
                f"validity must be a whole number of minutes from 1 to {MAX_VALIDITY}",
            )
        if download not in ("0", "1"):
            raise self._fail(
                req, 400, CODE_BAD_PARAM, "Invalid download flag", shown, "download", "download must be 0 or 1"
            )
        rec = self.data.recording_by_id.get(shown["id"].replace(" ", "+"))
        if rec is None:
            raise self._fail(req, 400, CODE_INVALID_ID, "Invalid Id", shown, "id", "Invalid id")
        if self.state.utcnow() - rec.start > KALEYRA_ID_LIFETIME:
            # 002 "When valid ID accessed after the maximum limit" (six months)
            raise self._fail(req, 400, CODE_EXPIRED, "Id Expired", shown, "id", "Id Expired")
        link = self._link(req.base, rec, int(validity) * 60)
        if download == "1":
            # 002: "1 - Redirects the API request to the signed AWS link with 301 status"
            return Response(301, {"Location": link, "Content-Type": "text/plain; charset=utf-8"}, b"")
        return json_response(
            200, {"code": CODE_OK, "message": "Request successfully executed!", "data": {"link": link}, "error": {}}
        )

    def _link(self, base: str, rec: Recording, ttl: int) -> str:
        key = self._key(rec)
        issued = int(self.state.now())
        amz_date = datetime.fromtimestamp(issued, UTC).strftime("%Y%m%dT%H%M%SZ")
        credential = quote(f"AKIASANDBOXKALEYRA01/{amz_date[:8]}/ap-south-1/s3/aws4_request", safe="")
        return (
            f"{base}{self.prefix}/_s3/{BUCKET}/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}"
            f"&X-Amz-Date={amz_date}&X-Amz-Expires={ttl}&X-Amz-SignedHeaders=host"
            f"&X-Amz-Signature={self.signer.sign(key, issued, ttl)}"
        )

    def object(self, req: Request, m) -> Response:
        """The signed link: an S3 object with Range; refused as S3 refuses once X-Amz-Expires has passed."""
        amz_date, expires, signature = (
            req.arg("X-Amz-Date") or "",
            req.arg("X-Amz-Expires") or "",
            req.arg("X-Amz-Signature") or "",
        )
        if not (amz_date and expires.isdigit() and signature):
            raise HttpError(s3_error(403, "AccessDenied", "Access Denied"))
        try:
            issued = int(datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp())
        except ValueError:
            raise HttpError(
                s3_error(
                    400,
                    "AuthorizationQueryParametersError",
                    "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
                )
            ) from None
        verdict = self.signer.check(m["key"], issued, int(expires), signature, self.state.now())
        if verdict == "ok" and self.take_fault("expire_links", req):
            verdict = "expired"
        if verdict == "bad":
            raise HttpError(
                s3_error(
                    403,
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not "
                    "match the signature you provided. Check your key and signing method.",
                )
            )
        if verdict == "expired":
            raise HttpError(
                s3_error(
                    403,
                    "AccessDenied",
                    "Request has expired",
                    **{
                        "X-Amz-Expires": expires,
                        "Expires": datetime.fromtimestamp(issued + int(expires), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "ServerTime": self.state.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
                    },
                )
            )
        rec = self._by_key.get(m["key"])
        if rec is None:
            raise HttpError(s3_error(404, "NoSuchKey", "The specified key does not exist.", Key=m["key"]))
        media = self.state.media_for(rec.audio, CONTENT_TYPES[rec.fmt])
        return serve_media(
            req,
            media,
            ranges=True,
            unsatisfiable=lambda: s3_error(416, "InvalidRange", "The requested range is not satisfiable"),
        )

    # --- the "report with recording details" (a sandbox convenience: Kaleyra has no listing API) ---

    def report_rows(self) -> Iterable[list[Any]]:
        for call in self.data.calls:
            rec = call.recordings[0] if call.recordings else None
            yield [
                call.id,
                call.from_number,
                call.to_number,
                call.direction.capitalize(),
                _ist(call.start),
                _ist(call.end),
                round((call.end - call.start).total_seconds()),
                call.status,
                call.agent or "",
                rec.id if rec else "",
                round(rec.duration) if rec else "",
            ]

    def index_entry(self, base: str) -> dict[str, Any]:
        return {
            "base_url": f"{base}{self.prefix}/v1",
            "credentials": {"api_key": API_KEY},
            "options": {"sid": SID},
            "seeded": self.data.seeded,
            "expired_recordings": self.data.extra["expired_ids"],
            "report_url": f"{base}{REPORT_PATH}",
            "report_timezone": "Asia/Kolkata",
        }


def _ist(moment: datetime) -> str:
    return (moment.astimezone(UTC) + IST).strftime("%Y-%m-%d %H:%M:%S")  # e.g. 2026-10-03 14:05:22 (IST)
