"""What real data needs filtered out before a question is asked, and what a question may show."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from tests.verification import builders as b
from verification import Chat, ChatType, Contact, MailMessage, MatchResult, Party, Policy, Source, generate_questions
from verification.matching import match_answer
from verification.people import party_is_human, person_is_human
from verification.questions.chats import chat_everyone
from verification.questions.contacts import contact_parties
from verification.questions.mail import mail_everyone
from verification.questions.meetings import meeting_everyone, meeting_partners
from verification.questions.team import team_shared

ALL_SOURCES = Policy().sources | {Source.HIERARCHY}


def all_accepted(context=None, org=None, policy=None) -> set[str]:
    qs = generate_questions(context or b.context(), org or b.org(), policy or Policy(), "seed")
    return {c.display for q in qs for c in q.accepted}


def test_private_and_cancelled_meetings_are_never_asked():
    partners = meeting_partners(b.context(), Policy())
    assert b.SECRET_PERSON.id not in partners  # only in a private, a cancelled and a 40-day-old meeting
    assert b.SECRET_PERSON.display_name not in all_accepted()


def test_declined_meetings_do_not_count():
    assert b.DECLINED_PERSON.id not in meeting_partners(b.context(), Policy())


def test_attendee_who_declined_did_not_meet_the_target():
    m = b.meeting("m-x", 1, b.ALAN, [b.TIM])
    declined = replace(m.attendees[0], response=b.ResponseStatus.DECLINED)
    context = b.context(meetings=(replace(m, attendees=(declined,)),))
    assert meeting_partners(context, Policy()) == {}


def test_all_hands_and_focus_blocks_are_skipped():
    partners = meeting_partners(b.context(), Policy())
    assert not any(k.startswith("u-c") for k in partners)  # 41-person all-hands crowd
    small_all_hands = b.meeting("m-ah", 1, b.ADA, [b.ALAN, b.TIM], subject="Q4 All-Hands")
    assert meeting_partners(b.context(meetings=(small_all_hands,)), Policy()) == {}


def test_all_day_events_are_skipped():
    m = b.meeting("m-day", 1, b.TIM, [b.ALAN], is_all_day=True)
    assert meeting_partners(b.context(meetings=(m,)), Policy()) == {}


def test_rooms_service_accounts_and_bots_are_never_answers():
    accepted = all_accepted()
    assert b.ROOM.display_name not in accepted and b.SVC.display_name not in accepted
    assert not person_is_human(b.ROOM) and not person_is_human(b.SVC)
    bot = b.Person("u-bot", "Teams Bot", "Teams", "Bot", "teams.bot@contoso.example", None, "Bot", "IT")
    assert not person_is_human(bot)
    assert not party_is_human(Party("Room 4.12", "room412@contoso.example"))


def test_person_named_botha_is_still_a_person():
    assert person_is_human(b.person("u-botha", "Thandi", "Botha"))


def test_person_whose_surname_is_a_service_word_is_a_person():
    luc = b.person("u-luc", "Luc", "Room", "Accountant", "Finance")
    assert person_is_human(luc)
    assert party_is_human(b.party(luc), b.org())
    meeting = b.meeting("m-luc", 1, luc, [b.ALAN])
    assert luc.id in meeting_partners(b.context(meetings=(meeting,)), Policy(), b.org())


def test_service_words_outside_a_persons_name_still_mark_a_service():
    room = replace(b.person("u-r", "Luc", "Dupont", "Facilities", "Operations"), display_name="Room Luc Dupont")
    assert not person_is_human(room)
    bot = b.Person("u-bot", "Teams Bot", "Teams", "Bot", "teams.bot@contoso.example", None, "Bot", "IT")
    assert not person_is_human(bot)  # a person-shaped name, but the title says what it is


def test_people_with_service_words_in_their_job_title_are_people():
    for title in ("Test Engineer", "Helpdesk Analyst", "System Administrator", "Resource Planner"):
        assert person_is_human(b.person("u-x", "Dana", "Scully", title, "IT")), title


def test_internal_sender_without_a_directory_account_is_not_a_person():
    concur = Party("Concur Expense", f"concur@{b.DOMAIN}")
    assert not party_is_human(concur, b.org())
    mail = (MailMessage(concur, b.NOW - timedelta(hours=2)),)
    assert not [q for q in generate_questions(b.context(mail=mail), b.org(), Policy(), "s") if q.source is Source.MAIL]


def test_unresolved_colleague_with_a_given_name_the_tenant_knows_is_a_person():
    assert party_is_human(Party("Radia Perlman", f"radia.perlman@{b.DOMAIN}"), b.org())
    unknown_counts = b.org(given_name_counts={})  # then the nicknames table vouches for common given names
    assert party_is_human(Party("Katherine Moss", f"kmoss@{b.DOMAIN}"), unknown_counts)
    assert not party_is_human(Party("Concur Expense", f"concur@{b.DOMAIN}"), unknown_counts)


def test_outside_senders_are_judged_by_name_and_address_alone():
    assert party_is_human(Party("Joan Clarke", "joan@bletchley.example"), b.org())


def test_newsletters_and_no_reply_senders_are_never_answers():
    accepted = all_accepted()
    assert "Tech Weekly" not in accepted and "Jane Marketing" not in accepted


def test_external_mail_senders_are_skipped():
    mail = (MailMessage(Party("Joan Clarke", "joan@bletchley.example"), b.NOW - timedelta(hours=2)),)
    qs = generate_questions(b.context(mail=mail), b.org(), Policy(), "s")
    assert not [q for q in qs if q.source is Source.MAIL]


def test_old_chats_and_meeting_chats_are_not_asked():
    qs = generate_questions(b.context(), b.org(), Policy(), "s")
    chat_answers = {c.display for q in qs if q.source is Source.CHATS for c in q.accepted}
    assert b.SECRET_PERSON.display_name not in chat_answers  # 30-day-old chat
    assert b.DECLINED_PERSON.display_name not in chat_answers  # meeting chat


def test_big_group_chats_are_not_asked():
    crowd = tuple(b.party(b.person(f"u-g{i}", f"Given{i}", "Crowd", dept="Sales")) for i in range(20))
    chat = Chat("c-big", ChatType.GROUP, (b.party(b.ALAN), *crowd), b.NOW - timedelta(hours=1))
    qs = generate_questions(b.context(chats=(chat,)), b.org(), Policy(), "s")
    assert not [q for q in qs if q.source is Source.CHATS]


def test_the_target_is_never_their_own_answer():
    assert b.ALAN.display_name not in all_accepted()


def test_subjects_never_appear_unless_policy_allows():
    prompts = [q.prompt for q in generate_questions(b.context(), b.org(), Policy(), "s")]
    assert not any("Parser rewrite" in p for p in prompts)
    allowed = generate_questions(b.context(), b.org(), Policy(show_subjects=True), "s")
    assert any("Parser rewrite" in q.prompt for q in allowed)


def test_unavailable_source_is_skipped():
    context = b.context(unavailable={"chats": "403 missing Chat.Read.All"})
    assert not [q for q in generate_questions(context, b.org(), Policy(), "s") if q.source is Source.CHATS]


def test_disabled_source_is_skipped():
    policy = Policy(sources=frozenset({Source.MEETINGS}))
    assert {q.source for q in generate_questions(b.context(), b.org(), policy, "s")} == {Source.MEETINGS}


def test_multiple_choice_can_be_turned_off():
    qs = generate_questions(b.context(), b.org(), Policy(allow_multiple_choice=False), "s")
    assert all(not q.options for q in qs)


def test_multiple_choice_decoys_are_not_true_answers():
    qs = generate_questions(b.context(), b.org(), Policy(), "s")
    chats = next(q for q in qs if q.kind == "chats.chatted.choice")
    truth = {b.TEAM[0].display_name, b.TIM.display_name, b.HEDY.display_name, b.VINT.display_name}
    right = chats.options[chats.correct_option]
    assert right in truth
    assert not (set(chats.options) - {right}) & truth


def test_multiple_choice_never_makes_the_manager_the_answer():
    for q in generate_questions(b.context(), b.org(), Policy(), "s"):
        if q.options:
            assert q.options[q.correct_option] != b.GRACE.display_name


def test_question_repr_hides_accepted_answers():
    q = next(q for q in generate_questions(b.context(), b.org(), Policy(), "s") if q.source is Source.CHATS)
    assert b.TIM.display_name not in repr(q)


def test_generation_is_deterministic_for_a_seed():
    one = generate_questions(b.context(), b.org(), Policy(), "same")
    two = generate_questions(b.context(), b.org(), Policy(), "same")
    assert one == two


def test_every_question_explains_its_bits():
    for q in generate_questions(b.context(), b.org(), Policy(), "s"):
        assert "bits" in q.explanation and q.guesses >= 1 and 0 < q.ease <= 1


def test_roles_held_only_as_pim_eligibilities_are_never_answers():
    teams_admin = b.Role("r-teams", "Teams Administrator", False, eligible=True)
    accepted = all_accepted(b.context(roles=(b.HELPDESK_ROLE, teams_admin)))
    assert "Helpdesk Administrator" in accepted and "Teams Administrator" not in accepted
    assert "Teams Administrator" not in all_accepted(b.context(roles=(teams_admin,)))


# --- the teammate as the attacker ------------------------------------------------------------------------------

PAT = b.person("u-pat", "Patricia", "Selinger", "Data Architect", "Finance")  # met only with a teammate there


def with_team_meeting():
    """Alan's context plus a cross-team project meeting his teammate José also attends, with Patricia."""
    project = b.meeting("m-team-project", 2, PAT, [b.ALAN, b.TEAM[1]], subject="Ledger migration")
    return b.context(meetings=(*b.meetings(), project))


def meeting_question(context):
    return next(q for q in generate_questions(context, b.org(), Policy(), "seed") if q.id.startswith("meetings.met."))


def test_someone_met_with_a_teammate_there_is_never_credited_but_is_not_wrong():
    q = meeting_question(with_team_meeting())
    assert PAT.display_name not in {c.display for c in q.accepted}
    assert match_answer(q, PAT.display_name).result is MatchResult.UNSCORED
    assert match_answer(q, "Zebedee Quayle").result is MatchResult.WRONG


def test_a_colleague_from_a_huge_all_hands_is_true_for_had_a_meeting_with_and_never_wrong():
    q = meeting_question(b.context())
    crowd = "Crowd7 Member"  # one of the 40 others in the Engineering all hands
    assert crowd not in {c.display for c in q.accepted}
    assert match_answer(q, crowd).result is MatchResult.UNSCORED


def test_what_the_team_shares_is_worth_nothing_to_the_question():
    alone = meeting_question(b.context())
    shared = meeting_question(with_team_meeting())
    assert shared.bits <= alone.bits  # Patricia adds no answer a teammate could not give
    assert "teammates" in shared.prompt  # the wording tells the caller to leave out meetings with the team


def test_multiple_choice_decoys_are_false_by_the_wording():
    context = with_team_meeting()
    policy = Policy(multiple_choice_per_source=3)
    true = {
        "meetings": set(meeting_everyone(context, policy)), "chats": set(chat_everyone(context, policy)),
        "mail": set(mail_everyone(context, b.org(), policy)), "contacts": set(contact_parties(context)),
        "groups": {g.id for g in context.groups},
    }
    checked = 0
    for seed in map(str, range(30)):
        for q in generate_questions(context, b.org(), policy, seed):
            if q.form.value == "multiple_choice":
                decoys = {c.key for c in q.confusers}
                assert not decoys & true[q.source.value], (q.id, decoys & true[q.source.value])
                checked += 1
    assert checked >= 30


def test_multiple_choice_right_answers_are_never_shared_with_the_team():
    context = with_team_meeting()
    shared = team_shared(context, b.org(), Policy())
    assert PAT.id in shared and b.TEAM[1].id in shared and b.TIM.id not in shared
    for seed in map(str, range(30)):
        for q in generate_questions(context, b.org(), Policy(), seed):
            if q.form.value == "multiple_choice" and q.source.value != "groups":
                assert not {c.key for c in q.accepted} & shared


def test_a_group_a_teammate_is_in_too_is_never_credited_but_is_not_wrong():
    team_group = replace(b.COMPILERS, member_ids=frozenset({b.ALAN.id, b.TEAM[2].id, "u-someone"}))
    context = b.context(groups=tuple(team_group if g.id == b.COMPILERS.id else g for g in b.context().groups))
    q = next(q for q in generate_questions(context, b.org(), Policy(), "seed") if q.id == "groups.member_of.small")
    assert b.COMPILERS.name not in {c.display for c in q.accepted} and b.RUST.name in {c.display for c in q.accepted}
    assert match_answer(q, "Compilers Team").result is MatchResult.UNSCORED
    assert match_answer(q, "Rust Guild").result is MatchResult.CORRECT
    for seed in map(str, range(20)):  # nor is it the right answer of a multiple choice
        for choice in generate_questions(context, b.org(), Policy(), seed):
            if choice.id.startswith("groups.member_of.choice"):
                assert choice.accepted[0].key != b.COMPILERS.id


def test_outsiders_saved_in_contacts_get_a_question_of_their_own_when_the_colleagues_there_are_guessable():
    """Patricia, saved too, is someone the team meets with together: a teammate names her first, so "someone outside
    your team" (or department) is worth nothing. "Someone from outside your organisation" asks for Joan alone."""
    saved_pat = Contact(PAT.display_name, (PAT.mail or "",), "Patricia", "Selinger", PAT)
    shared = with_team_meeting()
    no_all_hands = tuple(m for m in shared.meetings if m.id != "m-allhands")  # the team's partners: a few people
    context = replace(shared, meetings=no_all_hands, contacts=(*b.contacts(), saved_pat))
    q = next(q for q in generate_questions(context, b.org(), Policy(), "seed")
             if q.id.startswith("contacts.saved.") and q.form.value == "free_recall")
    assert q.id == "contacts.saved.outside_organisation"
    assert [c.display for c in q.accepted] == ["Joan Clarke"]
    assert q.bits == Policy().max_bits_per_question
    assert "outside your organisation" in q.prompt
    assert match_answer(q, "Joan Clarke").result is MatchResult.CORRECT
    assert match_answer(q, PAT.display_name).result is MatchResult.WRONG  # a colleague: ruled out by the wording


def test_no_outside_the_organisation_question_without_outsiders():
    for q in generate_questions(b.context(contacts=b.contacts()[1:]), b.org(), Policy(), "seed"):
        assert not q.kind.endswith(".outside_organisation"), q.kind


def test_a_session_is_asked_the_same_questions_when_only_askable_ones_are_finished():
    """generate_questions(asked_only=True), as a session starts, leaves out the questions too guessable to ask (the
    org chart's) without finding their look-alikes: what it keeps is exactly what the full generation keeps."""
    policy = Policy(sources=ALL_SOURCES)
    for seed in ("a", "b", "c"):
        full = generate_questions(b.context(), b.org(), policy, seed)
        asked = generate_questions(b.context(), b.org(), policy, seed, asked_only=True)
        assert asked == tuple(q for q in full if q.bits >= policy.min_bits_per_question)
        assert [q for q in full if q.bits < policy.min_bits_per_question and q.source is Source.HIERARCHY]
