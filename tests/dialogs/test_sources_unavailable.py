"""A verification that had to do without some of the person's Microsoft 365 data is audited, for the console's
home to count which sources are missing (usually a permission or a licence)."""

from __future__ import annotations

from dataclasses import replace

from store import AuditFilter
from tests.dialogs.fakes import ALAN
from tests.dialogs.harness import Chat, Teams


async def test_sources_graph_could_not_read_are_audited_when_a_verification_starts(teams: Teams, agent: Chat,
                                                                                    monkeypatch) -> None:
    whole = teams.directory.context_of
    monkeypatch.setattr(teams.directory, "context_of", lambda person: replace(
        whole(person), unavailable={"chats": "403 Invoked API requires Protected API access", "mail": "timeout"}))
    await agent.say("verify alan turing")
    [entry] = (await teams.store.audit.query(AuditFilter(action="graph.sources_unavailable"))).entries
    assert (entry.subject, entry.outcome, entry.details) == (ALAN.id, "partial", {"sources": ["chats", "mail"]})


async def test_nothing_is_audited_when_every_source_answered(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    assert not (await teams.store.audit.query(AuditFilter(action="graph.sources_unavailable"))).entries
