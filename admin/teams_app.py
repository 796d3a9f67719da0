"""Teams app: download the package admins upload to Teams (Teams admin center > Manage apps > Upload).

    GET /admin/teams-app                       what the package holds and how to install it
    GET /admin/teams-app/watchword-teams.zip   the package: manifest.json and the two icons
"""

from __future__ import annotations

from aiohttp import web

from admin.context import SETTINGS, audit, render, require_admin
from manifest.package import PackageError, package_bytes, render_manifest

routes = web.RouteTableDef()
FILENAME = "watchword-teams.zip"


def _inputs(request: web.Request) -> dict[str, str]:
    settings = request.app[SETTINGS]
    return {"bot_id": settings.client_id, "public_url": settings.public_url}


@routes.get("/admin/teams-app")
@require_admin
async def teams_app_page(request: web.Request) -> web.Response:
    try:
        manifest, problem = render_manifest(**_inputs(request)), None
    except PackageError as err:
        manifest, problem = None, str(err)
    return render(request, "teams_app.html", active="teams", manifest=manifest, problem=problem, filename=FILENAME)


@routes.get(f"/admin/teams-app/{FILENAME}")
@require_admin
async def download_package(request: web.Request) -> web.Response:
    try:
        body = package_bytes(**_inputs(request))
    except PackageError as err:
        raise web.HTTPConflict(text=f"The Teams app package cannot be built: {err}") from None
    await audit(request, "teams_app.download", "ok")
    return web.Response(body=body, content_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{FILENAME}"'})
