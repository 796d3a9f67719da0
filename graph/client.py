"""Building msgraph-sdk clients: one shared HTTP client, one request adapter per tenant.

The base URL and the trusted CA come from settings, so the same code talks to Microsoft and to
devtenant. The HTTP client is built with msgraph-core's default middleware (retries that honour
Retry-After, redirects); a bare httpx client would silently drop it. Every request carries the request's
correlation id as `client-request-id` (observability/correlation.py), the header Graph echoes in its answers and
error bodies and Microsoft's support looks requests up by. Each request's end (its status, a timeout, a failed
connection) is counted in `calls` when given; a `$batch` request's items are counted one by one by graph/batch.py
instead, as each may be throttled or fail on its own.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph_core import GraphClientFactory

from graph.batch import GraphCalls, source_of, status_of
from graph.tokens import GraphTokenProvider
from observability import correlation

KEEPALIVE_S = 60.0


def build_http_client(ca_file: Path | None, *, timeout_s: float = 20.0,
                      calls: GraphCalls | None = None) -> httpx.AsyncClient:
    """The pooled HTTP client every tenant's Graph calls share."""
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else ssl.create_default_context()
    # trust_env=False: proxies and CA bundles from the environment must not redirect Graph traffic.
    # Connections: each start in flight (at most WATCHWORD_STARTS_AT_ONCE, 16 by default) sends a few $batch
    # requests at once, and sign-in reads and tenant facts run beside them: 100 leave room for all, so Graph's own
    # latency, not a short pool, sets the pace. A request that still finds none free in its time is Watchword's
    # load (graph.batch.POOL_BUSY: the agent hears "busy"), never "can't read their data".
    # Idle connections are kept a minute (httpx's default is 5 s): a helpdesk starts a verification every minute or
    # so, and a new TCP and TLS connection costs round trips to Graph before the first question. Should Graph close
    # one first, the pool sees it closed when it would reuse it and opens another.
    transport: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport(
        verify=context, trust_env=False, limits=httpx.Limits(max_connections=100, max_keepalive_connections=50,
                                                             keepalive_expiry=KEEPALIVE_S))
    if calls is not None:
        transport = _Counted(transport, calls)
    raw = httpx.AsyncClient(transport=transport, timeout=timeout_s, trust_env=False,
                            event_hooks={"request": [_correlate]})
    return GraphClientFactory.create_with_default_middleware(client=raw)


class _Counted(httpx.AsyncBaseTransport):
    """Counts how each request ended (below msgraph-core's retries, so every attempt counts)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, calls: GraphCalls) -> None:
        self._inner = inner
        self._calls = calls

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        batch = request.url.path.endswith("/$batch")
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.PoolTimeout:
            raise  # never sent (our own pool was full): Watchword's load, not a Graph call
        except httpx.HTTPError as err:
            if not batch:
                self._calls.graph_call(source_of(str(request.url)),
                                       "timed_out" if isinstance(err, httpx.TimeoutException) else "failed")
            raise
        if not batch:
            self._calls.graph_call(source_of(str(request.url)), status_of(response.status_code))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _correlate(request: httpx.Request) -> None:
    """Send the correlation id (msgraph-core's telemetry keeps a client-request-id it finds, else makes one)."""
    correlation_id = correlation.current()
    if correlation_id is not None and "client-request-id" not in request.headers:
        request.headers["client-request-id"] = correlation_id


def build_graph_client(http: httpx.AsyncClient, tokens: GraphTokenProvider, graph_url: str) -> GraphServiceClient:
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(tokens), client=http)
    adapter.base_url = graph_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter)
