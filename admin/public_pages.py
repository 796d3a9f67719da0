"""The public pages the Teams app manifest links to (manifest.package: websiteUrl, privacyUrl, termsOfUseUrl).

    GET /          what Watchword is, with links to the two pages below and to the console
    GET /privacy   what Watchword reads from Microsoft Graph, what it keeps and where, how to remove it
    GET /terms     the terms of use

No sign-in: Teams shows these links to everyone who installs the app. They lie outside /admin, so the console
guard leaves them alone (no session is read or written); the security headers admin.app puts on every response
of the application apply to them as to the console.
"""

from __future__ import annotations

from aiohttp import web

from admin.context import render
from graph.permissions import PERMISSIONS
from manifest.package import FULL_DESCRIPTION

routes = web.RouteTableDef()


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    return render(request, "public_home.html", description=FULL_DESCRIPTION)


@routes.get("/privacy")
async def privacy(request: web.Request) -> web.Response:
    return render(request, "privacy.html", permissions=PERMISSIONS)


@routes.get("/terms")
async def terms(request: web.Request) -> web.Response:
    return render(request, "terms.html")
