"""`python -m devtenant` as a process: one JSON line on stdout, https with its CA, clean exit on SIGTERM."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from devtenant.__main__ import parse_args
from tests.devtenant.helpers import https_session, msal_app

REPO = Path(__file__).resolve().parents[2]
READY_KEYS = {"authority", "graph", "login", "tenant_id", "domain", "client_id", "client_secret", "ca_file",
              "seed", "users", "helpdesk_group_id", "admins_group_id"}


def _read_line(stream, timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no line on stdout within {timeout} s") from None


@pytest.mark.e2e
def test_cli_prints_one_json_line_serves_discovery_and_exits_cleanly_on_sigterm(tmp_path):
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and a fixed argument list
        [sys.executable, "-m", "devtenant", "--port", "0", "--seed", "3", "--users", "20", "--ca-dir", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(_read_line(proc.stdout, timeout=60))
        assert ready.keys() == READY_KEYS
        assert (ready["seed"], ready["users"]) == (3, 20)
        assert ready["authority"].startswith("https://127.0.0.1:")
        discovery = https_session(ready).get(f"{ready['authority']}/v2.0/.well-known/openid-configuration")
        assert discovery.json()["issuer"] == f"{ready['authority']}/v2.0"
        assert "access_token" in msal_app(ready).acquire_token_for_client(["https://graph.microsoft.com/.default"])

        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out == ""  # the ready line was the only one
    assert ready["client_secret"] not in err
    assert "stopping" in err


@pytest.mark.parametrize("argv", [
    ["--users", "19"], ["--users", "50001"], ["--fault-rate", "1.5"], ["--fault-rate", "-0.1"],
    ["--port", "65536"], ["--port", "-1"], ["--latency-ms", "fast"],
])
def test_cli_refuses_out_of_range_arguments(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_cli_defaults_and_accepted_bounds():
    args = parse_args(["--users", "50000", "--fault-rate", "1", "--port", "65535", "--unconsented"])
    assert (args.users, args.fault_rate, args.port, args.unconsented) == (50000, 1.0, 65535, True)
    assert parse_args([]).port == 0 and parse_args([]).host == "127.0.0.1"
