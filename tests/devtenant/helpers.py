"""Shared test helpers: a devtenant on a background thread, https clients that trust its CA."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import msal
import requests

from devtenant.server import RunningDevTenant, start_devtenant
from devtenant.state import DevTenantConfig
from tests.devtenant.tiny_org import tiny_org

# Small and fast: the tiny org, and the service principal's role as in the demo. The sign-in logs answer at once:
# DevTenantConfig's 1.5 s for them (as Microsoft's reports API) was waited out by every test whose app or directory
# reads them, during the test or at its end; the tests about that delay set it themselves.
QUICK_SIGN_INS: dict[str, Any] = {"endpoint_latency_ms": ()}
TINY = DevTenantConfig(seed=1, users=20, **QUICK_SIGN_INS)


def fresh_tenants() -> Iterator[Callable[..., ThreadedDevTenant]]:
    """For a `make_tenant` fixture: `make(generated=..., **config)` starts a devtenant configured as TINY but for
    `config`, and each one started is stopped when the fixture ends."""
    started: list[ThreadedDevTenant] = []

    def make(*, generated: bool = False, **config: Any) -> ThreadedDevTenant:
        dt = ThreadedDevTenant(replace(TINY, **config), generated=generated)
        started.append(dt)
        return dt

    yield make
    for dt in started:
        dt.close()


class ThreadedDevTenant:
    """A devtenant running on its own event loop in a thread, so sync clients (msal, requests) can
    call it from the test."""

    def __init__(self, config: DevTenantConfig, *, generated: bool = False, **kwargs: Any):
        """The tiny org, or with `generated` the generator's org for config.seed and config.users."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        org = None if generated else tiny_org()
        self.running: RunningDevTenant = self._call(start_devtenant(config, org=org, **kwargs))

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def run(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the server's loop (to touch its state without racing a request)."""
        async def call() -> Any:
            return fn()
        return self._call(call())

    @property
    def ready(self) -> dict[str, Any]:
        return self.running.ready

    def close(self) -> None:
        self._call(self.running.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def https_session(ready: dict[str, Any]) -> requests.Session:
    """A requests session that trusts only the devtenant CA (REQUESTS_CA_BUNDLE would win otherwise)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = ready["ca_file"]
    return session


def msal_app(ready: dict[str, Any], *, client_id: str | None = None, secret: str | None = None,
             authority: str | None = None) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id or ready["client_id"],
        client_credential=secret if secret is not None else ready["client_secret"],
        authority=authority or ready["authority"],
        instance_discovery=False,
        http_client=https_session(ready),
    )


