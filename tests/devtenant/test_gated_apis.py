"""Protected and policy-gated APIs answer 403 with the permission granted, with Microsoft's own codes and messages
(issue 9 item 5): devtenant's knobs for each."""

from __future__ import annotations

from devtenant.graph_api import build_router
from tests.devtenant.graph_support import call, make_state
from tests.devtenant.tiny_org import ALAN


async def _error(state, path: str, query: dict[str, str] | None = None) -> tuple[int, str, str]:
    resp = await call(state, "GET", path, query or {}, router=build_router())
    error = resp.body.get("error", {}) if isinstance(resp.body, dict) else {}
    return resp.status, error.get("code", ""), error.get("message", "")


async def test_chats_without_protected_api_approval() -> None:
    status, code, message = await _error(make_state(protected_api_approved=False), f"/users/{ALAN}/chats")
    assert (status, code) == (403, "Forbidden") and message.startswith("Invoked API requires Protected API access")


async def test_mailboxes_under_an_application_access_policy() -> None:
    status, code, message = await _error(make_state(mail_access_policy_blocks=True), f"/users/{ALAN}/messages")
    assert (status, code) == (403, "ErrorAccessDenied") and "AppOnly AccessPolicy" in message


async def test_sign_in_logs_without_entra_id_p1() -> None:
    status, code, _ = await _error(make_state(entra_id_p1=False), "/auditLogs/signIns")
    assert (status, code) == (403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant")


async def test_by_default_the_tenant_is_set_up_as_the_readme_says() -> None:
    state = make_state()
    assert (await call(state, "GET", f"/users/{ALAN}/chats", {}, router=build_router())).status == 200
    assert (await call(state, "GET", "/auditLogs/signIns", {}, router=build_router())).status == 200
