"""The Microsoft 365 Agents Playground (the Teams-like test client that replaced the Bot Framework Emulator),
pointed at Watchword's bot and at devtenant's people.

`make run` in demo mode starts it next to the bot when Node.js and the npm package are there (`make` installs
the package into ./node_modules from package-lock.json): the person at the keyboard is a member of "Helpdesk
Agents", and the Playground's five mock users are employees Watchword can verify, with the dev tenant's id and
their real object ids, so the bot sees real directory identities. The browser end-to-end tests start it the
same way with the people they need.

What the Playground does that matters here (npm @microsoft/m365agentsplayground 0.2.28):
- it reads its mock data from `.m365agentsplayground.yml`, or from `M365_AGENTS_PLAYGROUND_CONFIG_PATH`; the
  file is YAML, so the JSON written here is read as is. It wants exactly five `users`, and on any mistake in
  the file it exits with status 1 after printing only "Listening on PORT" (the reason goes to its log file,
  `M365_AGENTS_PLAYGROUND_LOGFILE`, by default ./devTools/m365agentsplayground.log: set here, next to the
  config); it is serving once `GET /_internal/v1/config` answers 200;
- it listens on every interface and, when its port is taken, silently moves to a random one: the port is
  checked first and the one it announces ("Listening on PORT") is the one reported;
- only `TEAMSAPPTESTER_BROWSER=none` stops it from opening a browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from devtenant.model import Org, User

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "@microsoft/m365agentsplayground"
CLI = ROOT / "node_modules" / "@microsoft" / "m365agentsplayground" / "cli.js"
CONFIG_FILE = ".m365agentsplayground.yml"
CONFIG_VARIABLE = "M365_AGENTS_PLAYGROUND_CONFIG_PATH"
LOG_VARIABLE = "M365_AGENTS_PLAYGROUND_LOGFILE"
LOG_FILE = "m365agentsplayground.log"
READY_PATH = "/_internal/v1/config"
DEFAULT_PORT = 56150  # the Playground's own default
MOCK_USERS = 5  # its config schema wants exactly five
BOT_ID = "28:watchword-demo"  # Teams bot ids are "28:<app id>"; demo mode has no app id
START_TIMEOUT_S = 20.0
_LISTENING = re.compile(r"Listening on (\d+)")


def missing() -> str | None:
    """Why the Playground cannot start here (None when it can)."""
    if shutil.which("node") is None:
        return "Node.js is not installed (the Agents Playground needs node 18 or later)"
    if not CLI.exists():
        return f"the npm package {PACKAGE} is not in ./node_modules (run `make run` or `npm ci` with npm installed)"
    return None


def port_is_free(port: int) -> bool:
    """Nothing listens on `port` on any interface (the Playground binds them all)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("0.0.0.0", port))  # noqa: S104 - a probe, closed at once
        except OSError:
            return False
    return True


def free_port(preferred: int | None = None) -> int:
    """`preferred` when it is free, else one the OS picks."""
    if preferred and port_is_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("0.0.0.0", 0))  # noqa: S104 - a probe, closed at once
        return int(s.getsockname()[1])


# --- mock data -------------------------------------------------------------------------------------------

def mock_user(user: User) -> dict[str, str]:
    """A devtenant person as the Playground's mock user: their real object id, a Teams-style channel id."""
    return {"id": f"29:{user.id}", "name": user.display_name, "userPrincipleName": user.user_principal_name,
            "aadObjectId": user.id, "givenName": user.given_name, "surname": user.surname,
            "email": user.mail or user.user_principal_name}


def config(tenant_id: str, me: User, others: Sequence[User], *, chat_id: str = "a:watchword-demo-personal",
           team_group_id: str = "00000000-0000-0000-0000-000000000000") -> dict[str, Any]:
    """The Playground's mock data: `me` types in the Playground, `others` (exactly five) are the tenant's
    other users (members of its group chat and team)."""
    if len(others) != MOCK_USERS:
        raise ValueError(f"the Agents Playground takes exactly {MOCK_USERS} other users, not {len(others)}")
    return {
        "version": "0.1.1",
        "tenantId": tenant_id,
        "bot": {"id": BOT_ID, "name": "Watchword"},
        "currentUser": mock_user(me),
        "users": [mock_user(u) for u in others],
        "personalChat": {"id": chat_id},
        "groupChat": {"id": f"{chat_id}-group", "name": "Helpdesk"},
        "team": {"id": f"{chat_id}-team", "name": "IT Helpdesk", "aadGroupId": team_group_id,
                 "channels": [{"id": f"{chat_id}-channel", "name": "Password resets"}]},
    }


def write_config(directory: Path, data: Mapping[str, Any]) -> Path:
    """Write the config (JSON is YAML) into `directory`; returns its path, for `CONFIG_VARIABLE`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CONFIG_FILE
    path.write_text("# Written by Watchword for the Microsoft 365 Agents Playground (JSON is YAML).\n"
                    + json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _resettable(org: Org, user: User, federated: set[str]) -> bool:
    """A person Watchword would question: enabled member, not federated, no admin role, no role-assignable group."""
    if user.is_service_account or not user.account_enabled or user.user_type != "Member":
        return False
    if user.on_premises_sync_enabled or user.user_principal_name.rsplit("@", 1)[-1].lower() in federated:
        return False
    groups = org.transitive_member_of(user.id)
    if any(g.is_assignable_to_role for g in groups):
        return False
    return not any(r.is_privileged for p in (user.id, *(g.id for g in groups)) for r in org.roles_of(p))


def verifiable_people(org: Org, exclude: Iterable[str] = ()) -> list[User]:
    """People Watchword would question, those with the most meetings and chats first (more to ask about)."""
    federated = {d.id.lower() for d in org.domains if d.authentication_type == "Federated"}
    helpdesk = set(org.transitive_user_members(org.helpdesk_group_id))
    skip = set(exclude) | helpdesk
    people = [u for u in org.users.values() if u.id not in skip and _resettable(org, u, federated)]
    return sorted(people, key=lambda u: (-(len(org.calendar(u.id)) + len(org.chats_for(u.id))), u.id))


def helpdesk_agent(org: Org) -> User:
    """The first enabled person in "Helpdesk Agents"."""
    for uid in org.transitive_user_members(org.helpdesk_group_id):
        user = org.users[uid]
        if user.account_enabled and not user.is_service_account:
            return user
    raise LookupError("devtenant's Helpdesk Agents group has no enabled person")


# --- running it -----------------------------------------------------------------------------------------

def command(app_endpoint: str, port: int) -> list[str]:
    node = shutil.which("node") or "node"
    return [node, str(CLI), "-e", app_endpoint, "-c", "msteams", "-p", str(port), "--disable-telemetry"]


def environment(config_path: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """No browser opened; the config and the log file next to each other."""
    env = dict(os.environ if base is None else base)
    env.update({CONFIG_VARIABLE: str(config_path), LOG_VARIABLE: str(config_path.parent / LOG_FILE),
                "TEAMSAPPTESTER_BROWSER": "none"})
    return env


def failure_reason(config_path: Path) -> str:
    """The "error" lines of the Playground's log (where it says why it stopped), or a pointer to the log."""
    path = config_path.parent / LOG_FILE
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "no log file"
    errors = [line.removeprefix("error ").strip() for line in lines if line.startswith("error ")]
    return " ".join(errors[-3:]) or f"see {path}"


def die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM when the process that started it dies, even by SIGKILL, so no
    Playground outlives Watchword."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM


def listening_port(line: str) -> int | None:
    """The port in the Playground's "Listening on PORT" line."""
    found = _LISTENING.search(line)
    return int(found.group(1)) if found else None


@dataclass
class RunningPlayground:
    url: str
    port: int
    agent: User
    people: list[User]
    process: asyncio.subprocess.Process
    _drain: asyncio.Task[None]
    workdir: Path | None = None  # removed on stop (a temporary directory made for it)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self._drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._drain
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


async def start_demo_playground(org: Org, app_url: str) -> RunningPlayground | None:
    """`make run`'s Playground: started when it can be, and said so; None (and why, logged) when not."""
    reason = missing()
    if reason is not None:
        log.info("No Agents Playground (the Teams-like test client): %s", reason)
        return None
    workdir = Path(tempfile.mkdtemp(prefix="watchword-playground-"))
    try:
        running = await start_playground(org, app_url, workdir)
    except (RuntimeError, OSError) as err:
        shutil.rmtree(workdir, ignore_errors=True)
        log.warning("The Agents Playground did not start: %s", err)
        return None
    running.workdir = workdir
    # app.py's closing block says this to a person; the log line stays for DEBUG.
    log.debug("Chat with Watchword in the Microsoft 365 Agents Playground: %s. You are %s, a helpdesk agent; "
             "people you can verify there: %s (type: verify %s). It listens on every interface: demo data only.",
             running.url, running.agent.display_name, ", ".join(p.display_name for p in running.people),
             running.people[0].display_name)
    return running


async def start_playground(org: Org, app_url: str, workdir: Path, port: int = DEFAULT_PORT) -> RunningPlayground:
    """Start the Playground on `port` (or a free one if taken) against `{app_url}/api/messages`, as a helpdesk
    agent with five verifiable employees as the other users. Raises RuntimeError when it does not come up."""
    agent = helpdesk_agent(org)
    people = verifiable_people(org, exclude=[agent.id])[:MOCK_USERS]
    path = write_config(workdir, config(org.tenant_id, agent, people, team_group_id=org.helpdesk_group_id))
    chosen = free_port(port)
    if chosen != port:
        log.info("port %d is taken: the Agents Playground gets port %d", port, chosen)
    process = await asyncio.create_subprocess_exec(
        *command(f"{app_url}/api/messages", chosen), cwd=str(workdir), env=environment(path),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        preexec_fn=die_with_parent)
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT_S)).decode(errors="replace")
    except TimeoutError:
        line = ""
    listening = listening_port(line)
    drain = asyncio.create_task(_drain(process, path))
    url = f"http://127.0.0.1:{listening}"
    if listening is None or not await _serving(url, process):
        if process.returncode is None:
            process.kill()
        await process.wait()
        drain.cancel()
        raise RuntimeError(f"the Agents Playground did not start (exit status {process.returncode}): "
                           f"{failure_reason(path) if line else 'it said nothing'}")
    return RunningPlayground(url, listening, agent, people, process, drain)


async def _serving(url: str, process: asyncio.subprocess.Process) -> bool:
    """True once it serves its config; False when it exits first (a refused config file) or takes too long."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while process.returncode is None and loop.time() < deadline:
            try:
                async with http.get(url + READY_PATH) as response:
                    if response.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    return False


async def _drain(process: asyncio.subprocess.Process, config_path: Path) -> None:
    """Keep reading the Playground's output (so it never blocks on a full pipe), logged at debug level."""
    assert process.stdout is not None
    async for raw in process.stdout:
        log.debug("agents playground: %s", raw.decode(errors="replace").rstrip())
    code = await process.wait()
    if code not in (0, -15):  # -15: we stopped it
        log.warning("the Agents Playground exited with status %s (config %s)", code, config_path)
