"""The admin console: thin aiohttp handlers over store/ and graph/, server-rendered with Jinja2.

Start at `admin.app.setup_admin` (mounts everything under /admin) and `admin.context` (what a page of the
console may use: the app's resources, the signed-in admin, rendering, auditing).
"""
