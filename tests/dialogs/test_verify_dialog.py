"""`verify <name>`: from the search to the decision, as a helpdesk agent sees it in Teams."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.cards import card_text
from store import AuditFilter, UserSnapshot
from tests.dialogs.fakes import ADA, ALAN, ALAN_TWIN, JOSE, MARGARET, TENANT
from tests.dialogs.harness import (
    Chat,
    Teams,
    answer_until_decided,
    database_bytes,
    find_action,
    is_question,
    truthful_answer,
)
from verification import Outcome, SignIn
from verification.policy import Policy

MAX_QUESTIONS = Policy().max_questions  # what the question cards count up to

ORG_CHART_GUESSES = ("Grace Hopper", "Katherine Johnson", "Ada Lovelace", "Barbara Liskov", "Ken Thompson",
                     "Dennis Ritchie", "Edsger Dijkstra", "Donald Knuth")


async def sessions_of(teams: Teams, person=ALAN):
    return await teams.store.sessions.list_for_user(TENANT, person.id)


async def test_caller_who_names_real_partners_passes(teams: Teams, agent: Chat) -> None:
    await agent.say("verify Alan Turing")
    assert "Verifying\nAlan Turing" in agent.text()
    decision = await answer_until_decided(teams, agent, ALAN)
    assert decision.startswith("Verified\nAlan Turing")
    assert "[Reset password]" in decision
    [session] = await sessions_of(teams)
    assert session.outcome is Outcome.VERIFIED and session.agent_id == MARGARET.id
    transcript = await teams.store.sessions.transcript(session.session_id)
    assert transcript and all(entry.result.value == "correct" for entry in transcript)


async def test_caller_guessing_from_the_org_chart_is_not_verified(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    decision = await answer_until_decided(teams, agent, ALAN, truthful=False, guesses=ORG_CHART_GUESSES)
    assert decision.startswith("Not verified")
    assert "Do not reset the password" in decision and "[Reset password]" not in decision
    [session] = await sessions_of(teams)
    assert session.outcome is Outcome.NOT_VERIFIED


async def test_agent_never_sees_whether_an_answer_was_right(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    shown: list[str] = []
    right = await truthful_answer(teams, agent, ALAN)
    await agent.answer(right)
    after_right = agent.cards()
    shown.append(card_text(after_right[-2]))  # the answered card, replaced by its receipt
    await agent.click("Caller doesn't know")
    after_skip = agent.cards()
    shown.append(card_text(after_skip[-2]))
    assert shown == ["Question 1: answer recorded.", "Question 2: skipped."]
    questions = [card_text(c) for c in agent.cards() if is_question(c)]
    assert questions[-1].startswith(f"Question 3 of at most {MAX_QUESTIONS}\n" + "▰" * 3 + "▱" * (MAX_QUESTIONS - 3))
    everything = "\n".join(card_text(c) for c in agent.cards()[1:]).lower()  # after the person card
    for coaching in ("correct", "wrong", "right answer", "bits earned", "score", "well done", "incorrect"):
        assert coaching not in everything
    assert right not in agent.text()  # the accepted answer is only ever typed by the agent, never shown


async def test_typed_text_works_as_an_answer(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    await agent.say(await truthful_answer(teams, agent, ALAN))
    assert card_text(agent.last_card()).startswith(f"Question 2 of at most {MAX_QUESTIONS}")
    [session] = await sessions_of(teams)
    [entry] = await teams.store.sessions.transcript(session.session_id)
    assert entry.result.value == "correct"


async def test_bare_first_name_is_followed_up_with_their_full_name(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    full = await truthful_answer(teams, agent, ALAN)
    await agent.answer(full.split()[0])
    follow_up = card_text(agent.last_card())
    assert follow_up.startswith("Question 1, follow-up") and "full name" in follow_up
    await agent.answer(full)
    assert card_text(agent.last_card()).startswith(f"Question 2 of at most {MAX_QUESTIONS}")


async def test_a_wrong_answer_moves_on_to_the_next_question(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    await agent.answer("Donald Knuth")
    after = card_text(agent.last_card())
    assert after.startswith(f"Question 2 of at most {MAX_QUESTIONS}") and "again" not in after.lower()


async def test_several_matches_get_a_choice_card(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan")
    card = agent.last_card()
    assert card_text(card).startswith("Who is on the phone?")
    [choices] = [e for e in card["body"] if e.get("type") == "Input.ChoiceSet"]
    titles = [c["title"] for c in choices["choices"]]
    twin = next(t for t in titles if t.startswith(f"{ALAN_TWIN.display_name} — "))
    assert ALAN_TWIN.job_title in twin and ALAN_TWIN.department in twin  # each choice says whom, none "This one"
    assert len(set(titles)) == len(titles), titles
    first = next(c["value"] for c in choices["choices"] if c["title"].startswith(f"{ALAN.display_name} — "))
    await agent.click("Choose this person", {"person": first})
    assert "Verifying\nAlan Turing" in agent.text()
    assert is_question(agent.last_card())


async def test_none_of_these_cancels_without_asking_anything(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan")
    await agent.click("None of these")
    assert "Cancelled" in agent.text() and not await sessions_of(teams)


async def test_nobody_found_says_so(agent: Chat) -> None:
    await agent.say("verify Nobody Atall")
    assert "No one found\nNo one in your directory matches “Nobody Atall”" in agent.text()


async def test_privileged_administrator_is_refused_with_the_reason(teams: Teams, agent: Chat) -> None:
    await agent.say("verify ada lovelace")
    text = agent.text()
    assert "Refused: privileged administrator" in text and "Global Administrator" in text
    assert "Escalate to the identity team." in text
    assert not any(is_question(c) for c in agent.cards())
    [session] = await sessions_of(teams, ADA)
    assert session.outcome is Outcome.PRIVILEGED


async def test_federated_user_is_refused_with_the_reason(teams: Teams, agent: Chat) -> None:
    await agent.say("verify josé")
    assert "Can't verify José Müller\nJosé Müller has a password managed on-premises." in agent.text()
    assert not await sessions_of(teams, JOSE)


async def test_person_outside_the_protected_scope_is_refused(teams: Teams, agent: Chat) -> None:
    state = await teams.store.protected_users.begin_sync(TENANT)
    await teams.store.protected_users.apply_sync_page(
        TENANT, upserts=[UserSnapshot(ALAN.id, ALAN.upn or "", ALAN.display_name, included=False),
                         UserSnapshot(MARGARET.id, MARGARET.upn or "", MARGARET.display_name)],
        delta_link="delta-1")
    assert state.cycle == 1
    await agent.say("verify alan turing")
    assert "Alan Turing isn't protected by Watchword." in agent.text()
    assert not await sessions_of(teams)


async def test_person_synced_as_privileged_is_refused_before_any_directory_read(teams: Teams, agent: Chat) -> None:
    await teams.store.protected_users.begin_sync(TENANT)
    await teams.store.protected_users.apply_sync_page(
        TENANT, upserts=[UserSnapshot(ALAN.id, ALAN.upn or "", ALAN.display_name,
                                      not_resettable_reasons=("privileged_admin",))], delta_link="d")
    await agent.say("verify alan turing")
    assert "Alan Turing is a privileged administrator." in agent.text()


async def test_end_user_cannot_verify_anyone(teams: Teams, alan: Chat) -> None:
    await alan.say("verify margaret")
    assert "Only the IT helpdesk can verify callers" in alan.text()
    assert not await sessions_of(teams, MARGARET)


async def test_agent_cannot_verify_themself(teams: Teams, agent: Chat) -> None:
    await agent.say("verify margaret hamilton")
    assert "You can't verify yourself" in agent.text()


async def test_cancel_ends_the_verification(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    await agent.click("Cancel")
    assert card_text(agent.last_card()).startswith("Cancelled\nAlan Turing")
    [session] = await sessions_of(teams)
    assert session.outcome is Outcome.CANCELLED


async def test_typed_cancel_ends_the_verification_too(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    await agent.say("cancel")
    [session] = await sessions_of(teams)
    assert session.outcome is Outcome.CANCELLED
    await agent.say("cancel")
    assert "Nothing to cancel" in agent.text()


async def test_verification_left_open_times_out_cleanly(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    teams.clock.advance(minutes=11)
    await agent.answer(await truthful_answer(teams, agent, ALAN))
    decision = card_text(agent.last_card())
    assert decision.startswith("Timed out") and "start again" in decision
    [session] = await sessions_of(teams)
    assert session.outcome is Outcome.TIMED_OUT


async def test_third_failed_attempt_locks_the_person_out(teams: Teams, agent: Chat) -> None:
    for _ in range(3):
        await agent.say("verify alan turing")
        await answer_until_decided(teams, agent, ALAN, truthful=False, guesses=ORG_CHART_GUESSES)
    lockout = await teams.store.lockouts.active_lockout(TENANT, ALAN.id)
    assert lockout is not None
    await agent.say("verify alan turing")
    assert "Alan Turing is locked out" in agent.text()
    assert len(await sessions_of(teams)) == 3


async def test_risky_sign_ins_block_the_verification(teams: Teams, agent: Chat) -> None:
    now = teams.clock()
    risky = tuple(SignIn(now - timedelta(minutes=30 - i), "203.0.113.9", "Lagos", "NG", risk_level="high",
                         risk_state="atRisk") for i in range(3))
    original = teams.directory.context_of
    teams.directory.context_of = lambda p: replace(original(p), sign_ins=risky + original(p).sign_ins)
    await agent.say("verify alan turing")
    text = agent.text()
    assert "Sign-in risk: high" in text and "Blocked: risky sign-ins" in text
    assert not any(is_question(c) for c in agent.cards())


async def test_thin_account_cannot_be_verified_this_way(teams: Teams, agent: Chat) -> None:
    original = teams.directory.context_of
    teams.directory.context_of = lambda p: replace(original(p), meetings=(), chats=(), mail=(), contacts=(),
                                                   groups=())
    await agent.say("verify alan turing")
    assert "Can't verify this way" in agent.text()


async def test_directory_outage_is_explained_without_starting(teams: Teams, agent: Chat) -> None:
    teams.directory.down = True
    await agent.say("verify alan turing")
    assert "I can't search the directory right now\nMicrosoft Graph is unavailable: throttled" in agent.text()


async def test_every_agent_action_is_audited_with_the_agent(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    await answer_until_decided(teams, agent, ALAN)
    await agent.click("Reset password")
    await agent.click("Yes, reset it")
    await agent.click("I've passed it on")
    page = await teams.store.audit.query(AuditFilter(actor=f"teams:{MARGARET.id}"), limit=100)
    actions = [(e.action, e.outcome) for e in reversed(page.entries)]
    assert actions[:3] == [("verification.requested", "started"), ("verification.search", "found"),
                           ("verification.started", "in_progress")]
    assert ("verification.answer", "recorded") in actions
    assert actions[-5:] == [("verification.decided", "verified"), ("password_reset", "started"),
                            ("password_reset.notice", "not_reached"), ("password_reset", "success"),
                            ("password_reset", "passed_on")]  # done once the card is sent, after the person's notice
    assert {e.subject for e in page.entries if e.action != "verification.requested"} - {None} == {ALAN.id}
    assert all(e.tenant_id == TENANT for e in page.entries)


async def test_accepted_answers_never_reach_the_database_or_the_log(teams: Teams, agent: Chat, db, caplog) -> None:
    caplog.set_level("DEBUG")
    await agent.say("verify alan turing")
    asked = []
    for turn in range(3):
        question = await teams.current_question(agent)
        asked.extend(c["display"] for c in question["accepted"] if c["display"] != ALAN.display_name)
        if turn == 0:
            await agent.say(await truthful_answer(teams, agent, ALAN))  # typed: the caller's own words
        else:
            await agent.click("Caller doesn't know")
    raw = database_bytes(db)
    for name in asked:
        assert name.encode() not in raw, f"{name} is in the database"
        assert name not in caplog.text, f"{name} is in the log"
        assert name not in agent.text()


async def test_decision_card_has_reset_only_when_verified_in_a_personal_chat(teams: Teams) -> None:
    group = teams.chat(MARGARET, conversation_type="groupChat", conversation_id="19:helpdesk@thread.v2")
    await group.say("verify alan turing")
    decision = await answer_until_decided(teams, group, ALAN)
    assert decision.startswith("Verified") and "[Reset password]" not in decision
    assert "open a 1:1 chat with Watchword" in decision
    assert find_action(group.last_card(), "Reset password", required=False) is None


async def test_new_verify_while_one_is_open_cancels_the_old_one(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    await agent.say("verify ada lovelace")
    assert "Previous verification cancelled" in agent.text()
    [session] = await sessions_of(teams)
    assert session.outcome is Outcome.CANCELLED
    assert "Refused: privileged administrator" in agent.text()


async def test_help_while_a_question_waits_keeps_the_question(teams: Teams, agent: Chat) -> None:
    await agent.say("verify alan turing")
    await agent.say("help")
    await agent.answer(await truthful_answer(teams, agent, ALAN))
    assert card_text(agent.last_card()).startswith(f"Question 2 of at most {MAX_QUESTIONS}")


async def test_verifications_the_agent_cancelled_do_not_count_towards_the_limit(teams: Teams, agent: Chat) -> None:
    for _ in range(3):  # a dropped call, a misclick: the agent cancelled, the caller failed nothing
        await agent.say("verify alan turing")
        await agent.click("Cancel")
    await agent.say("verify alan turing")
    assert card_text(agent.last_card()).startswith("Question 1")
    assert await teams.store.lockouts.active_lockout(TENANT, ALAN.id) is None


async def test_the_third_failed_verification_locks_the_person_out_and_the_next_is_refused(
        teams: Teams, agent: Chat) -> None:
    for _ in range(3):
        await agent.say("verify alan turing")
        assert (await answer_until_decided(teams, agent, ALAN, truthful=False)).startswith("Not verified")
    lockout = await teams.store.lockouts.active_lockout(TENANT, ALAN.id)
    assert lockout is not None and lockout.locked_until == teams.clock.now + Policy().lockout_duration
    await agent.say("verify alan turing")
    assert "Alan Turing is locked out" in agent.text() and "Escalate to the security team" in agent.text()
    assert sorted(s.outcome.value for s in await sessions_of(teams)) == ["not_verified"] * 3


async def test_guests_and_disabled_accounts_are_refused_with_the_reason(teams: Teams, agent: Chat) -> None:
    original = teams.directory.context_of

    def as_guest(person):
        return replace(original(person), is_guest=True)

    teams.directory.context_of = as_guest
    await agent.say("verify Alan Turing")
    assert "Can't verify Alan Turing" in agent.text() and "is a guest from another organisation" in agent.text()

    def as_disabled(person):
        return replace(original(person), account_enabled=False)

    teams.directory.context_of = as_disabled
    await agent.say("verify Alan Turing")
    assert "has a disabled account" in agent.text()
    outcomes = [e.outcome for e in (await teams.store.audit.query(AuditFilter(action="verification.refused"))).entries]
    assert outcomes[:2] == ["account_disabled", "guest"]
    assert await sessions_of(teams) == []  # nothing was started, no attempt counted
