"""A hung identity platform degrades only what needs a token (issue 10 item 4): msal runs with timeouts in a
small pool of its own, so the event loop's default threads (the Agents SDK's JWT key lookup, the store) stay
free, and a token that does not come in time is a TokenError, not a turn that hangs."""

from __future__ import annotations

import asyncio

import pytest

import graph.tokens as tokens_module
from graph.tokens import TOKEN_THREADS, TokenError, TokenSource


async def test_a_silent_identity_platform_times_out_and_leaves_other_threads_free(monkeypatch) -> None:
    monkeypatch.setattr(tokens_module, "HTTP_TIMEOUT_S", 1.0)
    monkeypatch.setattr(tokens_module, "TOKEN_TIMEOUT_S", 3.0)
    held: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept the connection, say nothing (not even the TLS handshake)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    source = TokenSource(login_url=f"https://127.0.0.1:{port}", client_id="11111111-1111-4111-8111-111111111111",
                         client_secret="s", ca_file=None)
    try:
        hung = [asyncio.ensure_future(source.token(f"tenant-{i}")) for i in range(TOKEN_THREADS * 3)]
        await asyncio.sleep(0.2)
        # Everything else that runs in threads still runs at once.
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), 2.0) == "free"
        for task in hung:
            with pytest.raises(TokenError) as failed:
                await asyncio.wait_for(task, 30)
            assert failed.value.code == "unreachable"
    finally:
        source.close()
        server.close()
        for writer in held:
            writer.close()
