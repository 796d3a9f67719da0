"""Multiple choice for people from outside the organisation: a caller who blanks on "name someone you saved" still
has a question only they can answer, among made-up outsiders no impostor can tell from the real one."""

from __future__ import annotations

from dataclasses import replace

from tests.verification import builders as b
from verification import NO_RISK, Outcome, Policy, VerificationSession, generate_questions
from verification.context import Attendee, Contact, Party, ResponseStatus
from verification.factors import Factor
from verification.names import normalize
from verification.outsider_names import decoys, lexicon

SUPPLIERS = (Contact("Joan Clarke", ("joan@bletchley.example",), "Joan", "Clarke"),
             Contact("Emma Thompson", ("emma@films.example",), "Emma", "Thompson"),
             Contact("Peter Jackson", ("peter@wingnut.example",), "Peter", "Jackson"))


def outsider_versions(context=None, seed="s"):
    qs = generate_questions(context or b.context(contacts=SUPPLIERS), b.org(), Policy(), seed)
    return [q for q in qs if q.kind == "contacts.saved.choice" and "outside your organisation" in q.prompt]


def test_a_saved_supplier_makes_a_multiple_choice_among_made_up_outsiders():
    versions = outsider_versions()
    assert len(versions) == len(SUPPLIERS)  # one per supplier: each a fresh 1-in-5 pick
    directory = {normalize(p.display_name) for p in (b.ALAN, *b.TEAM, b.GRACE, b.TIM, b.RADIA)}
    for q in versions:
        assert len(q.options) == Policy().multiple_choice_options and q.bits == 2.32
        assert q.prompt == "Which one of these people from outside your organisation is saved in your Outlook contacts?"
        wrong = [o for i, o in enumerate(q.options) if i != q.correct_option]
        # False by the wording, and nobody the person knows or a colleague: none of the saved, none of the directory.
        assert not {normalize(o) for o in wrong} & ({normalize(c.display_name) for c in SUPPLIERS} | directory)
        # No first name or surname twice among the options: nothing singles one out.
        words = [normalize(o).split() for o in q.options]
        assert len({w[0] for w in words}) == len(words) and len({w[-1] for w in words}) == len(words)
    shown = [normalize(o) for q in versions for o in q.options]
    assert len(shown) == len(set(shown))  # versions never show an option twice


def test_calling_again_shows_the_same_options_around_the_same_right_answer():
    """Comparing the options of two calls must not single out the right answer (it would be the one shown twice)."""
    first = {q.options[q.correct_option]: set(q.options) for q in outsider_versions(seed="call-1")}
    again = {q.options[q.correct_option]: set(q.options) for q in outsider_versions(seed="call-2")}
    assert first == again


def test_an_outsider_a_teammate_also_deals_with_is_never_the_right_answer():
    joan = Attendee(Party("Joan Clarke", "joan@bletchley.example"), ResponseStatus.ACCEPTED)
    met = b.meeting("m-team-joan", 2, b.TEAM[0], [b.ALAN])
    team_meeting = replace(met, attendees=(*met.attendees, joan))
    versions = outsider_versions(b.context(contacts=SUPPLIERS, meetings=(*b.meetings(), team_meeting)))
    assert "Joan Clarke" not in {q.options[q.correct_option] for q in versions}
    assert len(versions) == len(SUPPLIERS) - 1


def test_a_name_the_decoy_lists_could_not_have_made_is_never_the_right_answer():
    """Among made-up names from common first names and surnames, an unusual real one would stand out."""
    assert decoys("Zxqwv Clarke", 4, (), b"", "u-alan", "ext:zxqwv") is None
    odd = Contact("Zxqwv Plorbnik", ("z@odd.example",), "Zxqwv", "Plorbnik")
    assert not outsider_versions(b.context(contacts=(odd,)))


def test_a_skipped_contacts_question_leads_to_the_outsiders_multiple_choice_not_an_early_stop():
    """Someone whose only private facts are suppliers they saved blanks on "name someone saved...": with the code
    held, the plan moves on to recognising one instead of declaring the bits out of reach."""
    context = b.context(contacts=SUPPLIERS, mail=(), chats=(), meetings=(), groups=())
    session = VerificationSession(lambda: b.NOW, seed="seed")
    step = session.start(context, b.org(), Policy(), NO_RISK, 0, frozenset({Factor.POSSESSION}))
    code = session.issue_code()
    session.requested(Factor.POSSESSION)
    step = session.enter_code(code)
    assert step.prompt is not None and step.prompt.kind.startswith("contacts.saved.") and not step.prompt.options
    step = session.answer("I don't know")
    asked = []
    while not step.done:
        assert step.prompt is not None and step.prompt.options, "the session stopped asking before the choices"
        asked.append(step.prompt.text)
        step = session.answer(session.asking.options[session.asking.correct_option])
    assert step.decision.outcome is Outcome.VERIFIED
    assert asked and all("from outside your organisation" in text for text in asked)


def test_where_surnames_change_with_gender_a_decoys_surname_goes_with_its_first_name():
    """A Czech supplier among decoys that pair a woman's first name with a man's surname would stand out."""
    shown, made_up = decoys("Jana Nováková", 4, (), b"", "u-alan", "ext:jana")  # type: ignore[misc]
    assert shown == "Jana Nováková"
    for name in made_up:
        given, surname = (normalize(word) for word in name.split(" ", 1))
        # Some locale's lists pair this first name with this surname for one gender (Nováková is a woman's).
        assert any(names.spell(given, surname) for names in lexicon().values()), name


def test_surnames_with_particles_and_double_first_names_are_found_whole():
    """Dutch, German and Spanish names ("van der", "de", two first names) are common among suppliers: read wrongly
    split they would never be a right answer, and the caller who saved only such people would have no question."""
    for name in ("Nisa van der Heijden", "Matthijs de Hoog", "Clarke, Joan"):
        found = decoys(name, 4, (), b"", "u-alan", "ext:" + name)
        assert found is not None, name
        assert normalize(found[0]) in {normalize(name), "joan clarke"}


def test_a_session_asks_no_more_multiple_choice_questions_than_the_policy_allows():
    """Picks among options are guesses an impostor can make: however many versions the plan holds, a session asks at
    most `max_choice_questions` of them (five by default: 11.6 bits, under what the manager's confirmation needs)."""
    context = b.context(contacts=SUPPLIERS)
    for cap in (1, 2, Policy().max_choice_questions):
        session = VerificationSession(lambda: b.NOW, seed="seed")
        step = session.start(context, b.org(), Policy(max_choice_questions=cap), NO_RISK, 0)
        choices = 0
        while not step.done:
            question = session.asking
            if question.options:
                choices += 1
                step = session.answer(question.options[question.correct_option])
            else:
                step = session.answer("I don't know")
        assert choices <= cap
    assert Policy().max_choice_questions * 2.32 < Policy().manager_required_bits


def test_a_supplier_saved_under_two_addresses_shows_the_same_options_whichever_is_asked():
    """Two keys, one name: were the decoys keyed by the address, two calls could show two option sets around the same
    name, and that name would be the only option in both."""
    twice = (*SUPPLIERS, Contact("Joan Clarke", ("j.clarke@enigma.example",), "Joan", "Clarke"))
    sets = {frozenset(q.options) for seed in map(str, range(12))
            for q in outsider_versions(b.context(contacts=twice), seed) if q.options[q.correct_option] == "Joan Clarke"}
    assert len(sets) == 1
