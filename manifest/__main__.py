"""`python -m manifest`: write the Teams app package (see `python -m manifest --help`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from manifest.package import APP_NAME, DEFAULT_OUT, DEFAULT_VERSION, PackageError, build_package, render_manifest
from settings import SettingsError, load_settings


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m manifest",
        description="Build the Teams app package (manifest.json, color.png, outline.png) to upload in the "
        "Teams admin center. Defaults come from the same settings as the app (WATCHWORD_CLIENT_ID, "
        "WATCHWORD_PUBLIC_URL).",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write the zip (default {DEFAULT_OUT})")
    parser.add_argument("--app-id", default="", help="the Teams app id (GUID); default derived from the bot id, "
                        "so every build for one deployment has the same id")
    parser.add_argument("--bot-id", default=None, help="the Entra app's client id (GUID); default "
                        "WATCHWORD_CLIENT_ID, or a demo placeholder when that is unset")
    parser.add_argument("--domain", default="", help="the public host name (host or host:port); default the host "
                        "of WATCHWORD_PUBLIC_URL")
    parser.add_argument("--version", default=DEFAULT_VERSION, help="the package version, MAJOR.MINOR.PATCH; raise "
                        f"it for every update you upload (default {DEFAULT_VERSION})")
    parser.add_argument("--name", default=APP_NAME, help=f"the app's name in Teams (default {APP_NAME})")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(environ, serving=False)
        inputs = {
            "bot_id": settings.client_id if args.bot_id is None else args.bot_id,
            "public_url": settings.public_url,
            "app_id": args.app_id,
            "domain": args.domain,
            "version": args.version,
            "name": args.name,
        }
        manifest = render_manifest(**inputs)
        path = build_package(out=args.out, **inputs)
    except (SettingsError, PackageError) as error:
        print(f"python -m manifest: {error}", file=sys.stderr)
        return 2
    if not inputs["bot_id"].strip():
        print("DEMO BUILD: no bot id (set WATCHWORD_CLIENT_ID or pass --bot-id); the package holds a placeholder "
              "and will not reach a running Watchword.", file=sys.stderr)
    bot = manifest["bots"][0]  # type: ignore[index]
    print(f"wrote {path} (Teams app id {manifest['id']}, bot id {bot['botId']}, version {manifest['version']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
