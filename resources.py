"""The typed keys under which create_app() puts the shared resources on the aiohttp application.

They live here, not in app.py, so that bot/ and admin/ can name them without importing the module
that imports them (and so that `python app.py` does not create a second set of keys as `__main__`).
"""

from __future__ import annotations

import httpx
from aiohttp import web

from graph.directory import Directory
from graph.tokens import TokenSource
from settings import Settings
from store.db import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
TOKENS = web.AppKey("tokens", TokenSource)
DIRECTORY = web.AppKey("directory", Directory)
# The one pooled HTTP client every Graph call goes through (graph.client.build_http_client).
GRAPH_HTTP = web.AppKey("graph_http", httpx.AsyncClient)
