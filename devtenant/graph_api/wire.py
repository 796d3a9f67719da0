"""What devtenant's Graph looks like on the wire, shared by direct requests and `$batch` items.

Authentication (the bearer token -> claims), the response headers Graph sends, error-envelope
request ids, query-string decoding, and the injected faults (devtenant's `fault_rate`). The
aiohttp side lives in `__init__.py`; `batch.py` uses the same helpers for each item, so an item
of a batch and a direct call answer identically.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from devtenant.graph_api.router import GraphError, GraphRequest, GraphResponse, Router, bad_request, error_response
from devtenant.state import DevTenantState
from devtenant.tokens import InvalidToken

logger = logging.getLogger(__name__)

GRAPH_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
TEXT_PLAIN = "text/plain"
# Graph's first-party app id, named in its WWW-Authenticate challenge.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    f'client_id="{GRAPH_APP_ID}"'
)
DIAGNOSTIC = json.dumps({"ServerInfo": {"DataCenter": "devtenant", "Slice": "E", "Ring": "5",
                                        "ScaleUnit": "000", "RoleInstance": "devtenant"}}, separators=(",", ":"))

# Why PyJWT refused a token (tokens.InvalidToken carries the exception's name) -> Graph's words.
_TOKEN_MESSAGES = {
    "ExpiredSignatureError": "Lifetime validation failed, the token is expired.",
    "ImmatureSignatureError": "Lifetime validation failed, the token is not yet valid.",
    "InvalidAudienceError": "Access token validation failure. Invalid audience.",
    "InvalidSignatureError": "Access token validation failure. Signature validation failed.",
}


def unauthenticated(message: str) -> GraphError:
    return GraphError(401, "InvalidAuthenticationToken", message, headers={"WWW-Authenticate": WWW_AUTHENTICATE})


def authenticate(state: DevTenantState, authorization: str | None) -> dict[str, Any]:
    """The validated claims of an `Authorization: Bearer ...` header, or Graph's 401."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthenticated("Access token is empty.")
    if token.count(".") != 2:
        raise unauthenticated("IDX14100: JWT is not well formed, there are no dots (.).")
    try:
        claims = state.issuer.verify_access_token(token)
    except InvalidToken as exc:
        raise unauthenticated(_TOKEN_MESSAGES.get(str(exc), "Access token validation failure.")) from None
    if str(claims.get("tid", "")).lower() != state.tenant_id.lower():
        raise unauthenticated("Access token validation failure. Invalid issuer or tenant.")
    if not claims.get("roles") and not claims.get("scp"):
        # Entra leaves `roles` out of an app token when nothing was consented.
        raise unauthenticated("Either scp or roles claim need to be present in the token.")
    return claims


def parse_query(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Decoded query options; a system query option given twice is Graph's 400."""
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in out and key.startswith("$"):
            raise bad_request(f"Query option '{key}' was specified more than once, but it must be "
                              "specified at most once.")
        out.setdefault(key, value)
    return out


def split_relative_url(url: str) -> tuple[str, dict[str, str]]:
    """A batch item's relative url ("users?$top=1" or "/users/x") -> (decoded path, query)."""
    raw_path, _, raw_query = url.partition("?")
    path = "/" + unquote(raw_path).lstrip("/")
    return path, parse_query(parse_qsl(raw_query, keep_blank_values=True))


async def dispatch(router: Router, request: GraphRequest) -> GraphResponse:
    """Run one request through the router; a bug in a handler is logged and answers Graph's 500."""
    try:
        return await router.dispatch(request)
    except Exception:
        logger.exception("devtenant Graph handler failed: %s %s", request.method, request.path)
        return error_response(GraphError(500, "UnknownError", "devtenant failed to handle this request; "
                                         "its log has the details."))


def new_request_id() -> str:
    return str(uuid.uuid4())


def graph_headers(resp: GraphResponse, *, request_id: str, client_request_id: str) -> dict[str, str]:
    """The headers Graph puts on every answer, plus the handler's own (Retry-After, Location...)."""
    headers = {
        "Cache-Control": "no-cache",
        "request-id": request_id,
        "client-request-id": client_request_id,
        "x-ms-ags-diagnostic": DIAGNOSTIC,
    }
    if isinstance(resp.body, dict | list):
        headers["Content-Type"] = GRAPH_JSON
        headers["OData-Version"] = "4.0"
    elif isinstance(resp.body, str):
        headers["Content-Type"] = TEXT_PLAIN
    headers.update(resp.headers)
    return headers


def stamp_error(resp: GraphResponse, *, request_id: str, client_request_id: str) -> None:
    """Graph's error envelope repeats the answer's request ids in innerError."""
    error = resp.body.get("error") if isinstance(resp.body, dict) else None
    if isinstance(error, dict):
        inner = error.setdefault("innerError", {})
        inner["date"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        inner["request-id"] = request_id
        inner["client-request-id"] = client_request_id


def encode_json(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- injected faults ------------------------------------------------------------------------------
THROTTLED, UNAVAILABLE, TIMEOUT = "throttled", "unavailable", "timeout"


@dataclass
class Faults:
    """devtenant's `fault_rate`: a seeded share of requests fail as Graph's do under load.

    A fault is a 429 with Retry-After, a 503, or a hang longer than clients wait, then 504 (a
    gateway timeout). The same seed gives the same sequence of faults for the same requests.
    """

    rate: float
    seed: int
    hang_s: float = 30.0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def draw(self, *, allow_timeout: bool = True) -> str | None:
        if self.rate <= 0 or self.rng.random() >= self.rate:
            return None
        kinds = (THROTTLED, UNAVAILABLE, TIMEOUT) if allow_timeout else (THROTTLED, UNAVAILABLE)
        return self.rng.choice(kinds)

    async def response(self, kind: str) -> GraphResponse:
        if kind == THROTTLED:
            err = GraphError(429, "TooManyRequests", "Too many requests.", headers={"Retry-After": "1"})
        elif kind == UNAVAILABLE:
            err = GraphError(503, "serviceNotAvailable", "The service is temporarily unavailable. "
                             "Retry the request later.", headers={"Retry-After": "1"})
        else:
            await asyncio.sleep(self.hang_s)
            err = GraphError(504, "GatewayTimeout", "The gateway did not receive a timely response "
                             "from the upstream server.")
        return error_response(err)



def header_lookup(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive read of a header from any mapping (aiohttp's are already case-insensitive)."""
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None
