"""`python -m admin sync`: a progress bar on stderr, a JSON line per tenant, and resuming after Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from admin.sync import SyncProgress, SyncStatus
from admin.sync_cli import ProgressBar, format_progress

ROOT = Path(__file__).resolve().parents[2]
TENANT = "7d3f0b3c-5a7e-4c1e-9a53-0d7e6f1c2b4a"


# --- the bar --------------------------------------------------------------------------------------------
def test_progress_line_with_a_known_total():
    line = format_progress(SyncProgress(TENANT, SyncStatus.RUNNING, cycle=1, pages=12, users_seen=1200,
                                        expected_users=4800, elapsed_s=3.25))

    assert line == "sync 7d3f0b3c (full) [#######.......................]  25% 1,200/4,800 users, 12 pages, 3.2 s"


def test_progress_line_of_a_resumed_delta_cycle_that_failed():
    line = format_progress(SyncProgress(TENANT, SyncStatus.FAILED, cycle=3, full=False, resumed=True, pages=2,
                                        users_seen=40, users_removed=3, elapsed_s=1.0,
                                        error="Microsoft Graph is unavailable: throttled"))

    assert line == ("sync 7d3f0b3c (changes, resumed) 40 users, 2 pages, 3 removed, 1.0 s - failed: "
                    "Microsoft Graph is unavailable: throttled")


def test_without_a_terminal_the_bar_prints_now_and_then_not_per_page():
    out, now = io.StringIO(), [0.0]
    bar = ProgressBar(out, clock=lambda: now[0])
    for second in range(12):
        now[0] = float(second)
        bar.show(SyncProgress(TENANT, SyncStatus.RUNNING, cycle=1, pages=second, users_seen=100 * second))
    bar.show(SyncProgress(TENANT, SyncStatus.DONE, cycle=1, pages=12, users_seen=1200))

    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and "\r" not in out.getvalue()  # at 0, 5 and 10 s, then the end
    assert lines[-1].endswith("- done")


# --- the command, against devtenant in its own process ---------------------------------------------------
@pytest.fixture(scope="module")
def slow_devtenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """2,000 people served at 150 ms a request: a sync of 20 pages takes a few seconds, long enough to interrupt."""
    proc = subprocess.Popen([sys.executable, "-m", "devtenant", "--port", "0", "--users", "2000", "--latency-ms", "150",
                             "--log-level", "WARNING"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        yield json.loads(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _env(ready: dict[str, Any], db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHWORD_", "CONNECTIONS__"))}
    env.update({"PYTHONPATH": str(ROOT), "WATCHWORD_CLIENT_ID": ready["client_id"],
                "WATCHWORD_CLIENT_SECRET": ready["client_secret"], "WATCHWORD_LOGIN_URL": ready["login"],
                "WATCHWORD_GRAPH_URL": ready["graph"], "WATCHWORD_CA_FILE": ready["ca_file"],
                "WATCHWORD_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
                "WATCHWORD_PUBLIC_URL": "https://watchword.example.com"})
    return env


def _connect(db: Path, tenant_id: str) -> None:
    import asyncio

    from store import open_store

    async def connect() -> None:
        store = await open_store(f"sqlite+aiosqlite:///{db}")
        try:
            await store.tenants.connect(tenant_id, display_name="Dev", granted_permissions=["User.Read.All"])
        finally:
            await store.close()

    asyncio.run(connect())


def _pages_stored(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT pages FROM directory_sync_state").fetchone()
    return int(row[0]) if row else 0


def test_interrupted_sync_resumes_where_it_stopped(slow_devtenant, tmp_path):
    db = tmp_path / "watchword.db"
    _connect(db, slow_devtenant["tenant_id"])
    env = _env(slow_devtenant, db)
    command = [sys.executable, "-m", "admin", "sync"]
    # Ctrl-C as a terminal sends it: SIGINT handled as Python does by default. A shell's background job (CI's) ignores
    # SIGINT, its children inherit that, and Python then leaves it ignored: the sync would never see the Ctrl-C.
    first = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,  # noqa: S603 - our module
                             stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    deadline = time.monotonic() + 60
    while _pages_stored(db) < 3 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = first.communicate(timeout=30)

    assert first.returncode == 130, err
    assert "run the same command again to resume" in err and out == ""
    stopped_at = _pages_stored(db)
    assert 3 <= stopped_at < 20

    second = subprocess.run(command + ["--tenant", slow_devtenant["tenant_id"]], cwd=tmp_path, env=env,  # noqa: S603
                            capture_output=True, text=True, timeout=120, check=False)

    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout.splitlines()[-1])
    assert result["status"] == "done" and result["resumed"] and result["cycle"] == 1
    # 2,000 people plus the guests and disabled accounts every tenant has, 100 a page: the whole cycle, both runs
    assert result["pages"] >= 20 and result["users_seen"] >= 2000
    with sqlite3.connect(db) as conn:
        users, distinct = conn.execute("SELECT count(*), count(DISTINCT user_id) FROM protected_users").fetchone()
    assert users == distinct == result["expected_users"]
    assert "100%" in second.stderr and "- done" in second.stderr


def test_without_a_connected_tenant_the_command_says_what_to_do(slow_devtenant, tmp_path):
    env = _env(slow_devtenant, tmp_path / "empty.db")

    result = subprocess.run([sys.executable, "-m", "admin", "sync"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60, check=False)

    assert result.returncode == 2 and "no tenant is connected yet" in result.stderr
