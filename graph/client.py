"""Building msgraph-sdk clients: one shared HTTP client, one request adapter per tenant.

The base URL and the trusted CA come from settings, so the same code talks to Microsoft and to
devtenant. The HTTP client is built with msgraph-core's default middleware (retries that honour
Retry-After, redirects); a bare httpx client would silently drop it.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph_core import GraphClientFactory

from graph.tokens import GraphTokenProvider


def build_http_client(ca_file: Path | None, *, timeout_s: float = 20.0) -> httpx.AsyncClient:
    """The pooled HTTP client every tenant's Graph calls share."""
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else ssl.create_default_context()
    # trust_env=False: proxies and CA bundles from the environment must not redirect Graph traffic.
    raw = httpx.AsyncClient(verify=context, timeout=timeout_s, trust_env=False,
                            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20))
    return GraphClientFactory.create_with_default_middleware(client=raw)


def build_graph_client(http: httpx.AsyncClient, tokens: GraphTokenProvider, graph_url: str) -> GraphServiceClient:
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(tokens), client=http)
    adapter.base_url = graph_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter)
