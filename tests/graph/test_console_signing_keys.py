"""The console's sign-in checks each id token's signature against the keys its tenant publishes: fetched with a
timeout, cached per tenant, and a token signed with any other key is refused."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import graph.signin as signin_module
from graph.signin import ConsoleSignIn, SignInError

CLIENT_ID = "11111111-1111-4111-8111-111111111111"
TENANT = "22222222-2222-4222-8222-222222222222"
PUBLISHED = rsa.generate_private_key(public_exponent=65537, key_size=2048)
UNPUBLISHED = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class KeysEndpoint(BaseHTTPRequestHandler):
    """`/{tenant}/discovery/v2.0/keys` publishing PUBLISHED as "k1", counting requests; `hang` makes it silent."""

    fetches: list[str] = []
    hang = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        KeysEndpoint.fetches.append(self.path)
        if KeysEndpoint.hang.is_set():
            time.sleep(5)
            return
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(PUBLISHED.public_key()))
        body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def login() -> Iterator[ConsoleSignIn]:
    KeysEndpoint.fetches.clear()
    KeysEndpoint.hang.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), KeysEndpoint)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    signin = ConsoleSignIn(login_url=f"http://127.0.0.1:{server.server_port}", client_id=CLIENT_ID,
                           client_secret="s", ca_file=None)
    yield signin
    signin.close()
    server.shutdown()
    server.server_close()


def id_token(signin: ConsoleSignIn, key: rsa.RSAPrivateKey = PUBLISHED, kid: str = "k1") -> str:
    now = int(time.time())
    claims = {"aud": CLIENT_ID, "iss": f"{signin._login_url}/{TENANT}/v2.0", "tid": TENANT, "oid": "o-1",
              "iat": now, "exp": now + 600, "name": "Ada Lovelace"}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def test_a_token_signed_with_a_published_key_passes_and_the_keys_are_read_once_per_tenant(login) -> None:
    assert login._verified_claims(id_token(login))["name"] == "Ada Lovelace"
    assert login._verified_claims(id_token(login))["oid"] == "o-1"
    assert KeysEndpoint.fetches == [f"/{TENANT}/discovery/v2.0/keys"]


def test_a_token_signed_with_a_key_the_tenant_does_not_publish_is_refused(login) -> None:
    with pytest.raises(SignInError) as unknown_kid:
        login._verified_claims(id_token(login, UNPUBLISHED, kid="k2"))
    assert unknown_kid.value.code == "invalid_id_token" and "does not publish" in unknown_kid.value.description
    with pytest.raises(SignInError) as forged:  # the published key's id, someone else's key
        login._verified_claims(id_token(login, UNPUBLISHED))
    assert forged.value.code == "invalid_id_token"


def test_a_silent_keys_endpoint_times_out_as_unreachable(login, monkeypatch) -> None:
    monkeypatch.setattr(signin_module, "HTTP_TIMEOUT_S", 0.5)
    KeysEndpoint.hang.set()
    started = time.monotonic()
    with pytest.raises(SignInError) as failed:
        login._verified_claims(id_token(login))
    assert failed.value.code == "unreachable" and time.monotonic() - started < 3
