"""How fast the protected users' sync runs, against how fast Graph's pages can be read at all.

    python -m bench.sync --users 50000 [--seed 1]

Starts devtenant in a separate process (`python -m devtenant`), so this process holds only the product
and its peak RSS is the product's own. Then, in this process:
1. raw paging: `/users/delta` with the product's `$select`, every page fetched with plain httpx, its
   JSON parsed for the next link and thrown away (the floor no sync can beat);
2. the product's sync (admin.sync.SyncService over GraphDirectory and a fresh SQLite store), full cycle;
3. raw paging again. `raw_paging_seconds` is the faster of the two raw runs, so the ratio is not flattered
   by a devtenant that warmed up or slowed down in between.

Targets: ratio (seconds / raw_paging_seconds) <= 1.5, peak RSS <= 200 MB. Prints figures, then one JSON
object as the last line: users, seconds, raw_paging_seconds, ratio, peak_rss_mb and details.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

READY_TIMEOUT_S = 900.0
TARGET_RATIO = 1.5
TARGET_RSS_MB = 200.0


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def start_devtenant(users: int, seed: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """`python -m devtenant --port 0` in its own process; returns it and its ready line."""
    proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "devtenant", "--port", "0", "--users", str(users), "--seed", str(seed),
         "--log-level", "WARNING"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.strip().startswith("{"):
            return proc, json.loads(line)
    proc.kill()
    raise SystemExit("devtenant did not print its ready line")


async def raw_paging(ready: dict[str, Any], token: str, start_url: str) -> tuple[float, int, int]:
    """Fetch every delta page with plain httpx, parse it for the next link, discard it."""
    context = ssl.create_default_context(cafile=ready["ca_file"])
    async with httpx.AsyncClient(verify=context, timeout=120, trust_env=False) as http:
        started = time.perf_counter()
        url: str | None = start_url
        pages = users = 0
        while url:
            response = await http.get(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
            response.raise_for_status()
            body = response.json()
            pages += 1
            users += len(body.get("value", []))
            url = body.get("@odata.nextLink")
        return time.perf_counter() - started, pages, users


async def product_sync(ready: dict[str, Any], db_path: Path) -> dict[str, Any]:
    from admin.sync import SyncService, SyncStatus
    from graph.client import build_http_client
    from graph.graph_directory import GraphDirectory
    from graph.tokens import TokenSource
    from settings import Settings
    from store import open_store

    s = Settings(database_url=f"sqlite+aiosqlite:///{db_path}").with_devtenant(ready)
    store = await open_store(s.database_url)
    tokens = TokenSource(login_url=s.login_url, client_id=s.client_id, client_secret=s.client_secret.get_secret_value(),
                         ca_file=s.ca_file)
    http = build_http_client(s.ca_file)
    try:
        await store.tenants.connect(s.tenant_id, display_name="bench", granted_permissions=["User.Read.All"])
        await tokens.token(s.tenant_id)  # the token is not what we measure
        rss_before = _peak_rss_mb()
        service = SyncService(store, GraphDirectory(tokens, http, s.graph_url, s.client_id))
        started, cpu_started = time.perf_counter(), time.process_time()
        result = await service.run(s.tenant_id)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        if result.status != SyncStatus.DONE:
            raise SystemExit(f"the sync failed: {result.error}")
        stored = await store.protected_users.count(s.tenant_id)
        users = await store.protected_users.list_users(s.tenant_id, limit=1000)
        not_resettable = 0
        after: str | None = None
        while users:
            not_resettable += sum(1 for u in users if not u.resettable)
            after = users[-1].user_id
            users = await store.protected_users.list_users(s.tenant_id, limit=1000, after_user_id=after)
        return {"seconds": seconds, "cpu_seconds": cpu_seconds, "pages": result.pages,
                "users_seen": result.users_seen, "stored": stored,
                "not_resettable": not_resettable, "rss_before_sync_mb": rss_before}
    finally:
        await http.aclose()
        tokens.close()
        await store.close()


async def _token(ready: dict[str, Any]) -> str:
    from graph.tokens import TokenSource

    tokens = TokenSource(login_url=ready["login"], client_id=ready["client_id"], client_secret=ready["client_secret"],
                         ca_file=Path(ready["ca_file"]))
    try:
        return (await tokens.token(ready["tenant_id"])).access_token
    finally:
        tokens.close()


async def run(ready: dict[str, Any]) -> dict[str, Any]:
    from graph import mapping
    from graph.context_loader import relative_url

    # The very first request the product's GraphDirectory.sync_users sends.
    start_url = ready["graph"] + relative_url("/users/delta", {"$select": ",".join(mapping.DIRECTORY_USER_FIELDS)})
    token = await _token(ready)
    raw_before, pages, raw_users = await raw_paging(ready, token, start_url)
    print(f"raw paging: {raw_users} users in {pages} pages, {raw_before:.1f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as folder:
        product = await product_sync(ready, Path(folder) / "watchword.db")
    print(f"product sync: {product['stored']} users stored ({product['not_resettable']} not resettable) in "
          f"{product['pages']} pages, {product['seconds']:.1f} s", flush=True)
    raw_after, _, _ = await raw_paging(ready, token, start_url)
    print(f"raw paging again: {raw_after:.1f} s", flush=True)
    raw = min(raw_before, raw_after)
    return {"raw_users": raw_users, "raw_pages": pages, "raw_before_s": raw_before, "raw_after_s": raw_after,
            "raw": raw, **product}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    proc, ready = start_devtenant(args.users, args.seed)
    print(f"devtenant (pid {proc.pid}) ready with {ready['users']} users in {time.perf_counter() - started:.1f} s",
          flush=True)
    try:
        figures = asyncio.run(run(ready))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    peak = _peak_rss_mb()
    ratio = figures["seconds"] / figures["raw"]
    out = {
        "users": figures["stored"],
        "seconds": round(figures["seconds"], 2),
        "raw_paging_seconds": round(figures["raw"], 2),
        "ratio": round(ratio, 3),
        "peak_rss_mb": round(peak, 1),
        "pages": figures["pages"],
        # This process's CPU during the sync (the product's own work, whatever else the machine is doing).
        "sync_cpu_seconds": round(figures["cpu_seconds"], 2),
        "not_resettable": figures["not_resettable"],
        "raw_paging_seconds_before": round(figures["raw_before_s"], 2),
        "raw_paging_seconds_after": round(figures["raw_after_s"], 2),
        "rss_before_sync_mb": round(figures["rss_before_sync_mb"], 1),
        "target_ratio": TARGET_RATIO,
        "target_peak_rss_mb": TARGET_RSS_MB,
        "met": ratio <= TARGET_RATIO and peak <= TARGET_RSS_MB,
        "cpus": os.cpu_count(),
    }
    print(f"sync {out['users']} users: {out['seconds']} s vs raw paging {out['raw_paging_seconds']} s "
          f"(ratio {out['ratio']}, target <= {TARGET_RATIO}); peak RSS {out['peak_rss_mb']} MB "
          f"(target <= {TARGET_RSS_MB})")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
