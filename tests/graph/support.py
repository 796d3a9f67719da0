"""The product's Graph layer wired to a devtenant exactly as in production: only URLs and the CA differ."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx

from devtenant.model import User
from graph.batch import GraphCalls
from graph.client import build_http_client
from graph.graph_directory import GraphDirectory
from graph.tokens import TokenSource
from settings import Settings
from tests.devtenant.helpers import ThreadedDevTenant


@asynccontextmanager
async def directory_for(dt: ThreadedDevTenant, *, clock: Callable[[], datetime] | None = None,
                        calls: GraphCalls | None = None, sent: list[httpx.Request] | None = None,
                        **kwargs: Any) -> AsyncIterator[GraphDirectory]:
    """A GraphDirectory as app.py would build it for this devtenant; "now" is the organisation's anchor.
    `sent`: every HTTP request to Graph is appended to it (a $batch as one, its items in its body).

    A fresh directory is a fresh Watchword process: devtenant's throttling bookkeeping starts clean too."""
    dt.run(lambda: dt.running.state.throttles.clear())
    settings = Settings().with_devtenant(dt.ready)
    tokens = TokenSource(login_url=settings.login_url, client_id=settings.client_id,
                         client_secret=settings.client_secret.get_secret_value(), ca_file=settings.ca_file)
    http = build_http_client(settings.ca_file, calls=calls)
    if sent is not None:
        async def keep(request: httpx.Request) -> None:
            if request.url.path.startswith("/v1.0/"):
                sent.append(request)

        http.event_hooks["request"].append(keep)
    org_now = dt.running.state.org.now
    directory = GraphDirectory(tokens, http, settings.graph_url, settings.client_id, clock=clock or (lambda: org_now),
                               calls=calls, **kwargs)
    try:
        yield directory
    finally:
        await directory.aclose()
        await http.aclose()
        tokens.close()


def state(dt: ThreadedDevTenant) -> Any:
    return dt.running.state


def person(given: str, surname: str, *, department: str = "Operations", manager: str | None = None,
           domain: str = "tiny.example", now: datetime) -> User:
    local = f"{given}.{surname}".lower().replace("'", "")
    return User(
        id=str(uuid.uuid4()), display_name=f"{given} {surname}", given_name=given, surname=surname,
        user_principal_name=f"{local}@{domain}", mail=f"{local}@{domain}", job_title="Analyst",
        department=department, office_location="London HQ", city="London", country="United Kingdom",
        usage_location="GB", manager_id=manager, employee_id=None, business_phones=[], mobile_phone=None,
        created_date_time=now - timedelta(days=30), last_password_change_date_time=now - timedelta(days=30))


def add_people(dt: ThreadedDevTenant, *users: User) -> None:
    def add() -> None:
        org = dt.running.state.org
        org.add_users(users)
        org.index()

    dt.run(add)
