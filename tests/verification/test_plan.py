"""The plan held between turns: the person's questions and what matching their answers needs, not the organisation."""

from __future__ import annotations

import itertools
import json
from dataclasses import astuple, replace

from tests.verification import builders as b
from verification import Policy, Question, VerificationSession, assess_risk
from verification.context import Group, GroupKind, OrgKnowledge
from verification.plan import decode_plan, encode_plan

GIVEN = ["Alan", "Grace", "Tim", "Katherine", "Joan", "Donald", "Ada", "Ken", "John", "Mary", "Wei", "Priya",
         "Olu", "Sven", "Ines", "Raj", "Lena", "Omar", "Yuki", "Carlos"]
SYLLABLES = ["bar", "cor", "den", "fal", "gri", "hol", "jun", "kes", "lor", "mun", "nor", "pel", "quin", "ros",
             "sal", "tor", "vel", "wyn"]
MARKER = b.person("u-marker", "Zebulon", "Quartermaine")  # in the department, nobody Alan dealt with
MARKER_GROUP = Group("g-marker", "Zither Enthusiasts", GroupKind.MICROSOFT_365, 9)


def large_org(members: int) -> OrgKnowledge:
    """Alan's organisation grown to `members` people in his department (many share his colleagues' first names)
    and a group for every 4 people."""
    surnames = ["".join(p).title() for p in itertools.product(SYLLABLES, repeat=3)]
    people = tuple(b.person(f"u-big{i}", GIVEN[i % len(GIVEN)], surnames[i % len(surnames)])
                   for i in range(members))
    groups = tuple(Group(f"g-big{i}", f"Project {surnames[i % len(surnames)]} {i}", GroupKind.MICROSOFT_365, 5 + i % 40)
                   for i in range(members // 4))
    base = b.org()
    given_counts = {g.lower(): members // len(GIVEN) for g in GIVEN}
    return replace(base, population=members, department_members=(*base.department_members, *people, MARKER),
                   groups=(*base.groups, *groups, MARKER_GROUP), group_count=len(groups) + 300,
                   given_name_counts={**base.given_name_counts, **given_counts})


def plan_of(org: OrgKnowledge) -> bytes:
    context, policy = b.context(), Policy()
    # Seeded: decoys are drawn at random from the department, so an unseeded run may, rarely, show the marker
    # as a multiple-choice option (a legitimate part of the plan, not organisation data carried along).
    session = VerificationSession(lambda: b.NOW, seed="plan-size")
    session.start(context, org, policy, assess_risk(context, policy), 0)
    assert session.plan()
    return encode_plan(session.plan())


def test_a_plan_in_a_large_organisation_stays_small_and_holds_no_organisation_wide_data() -> None:
    small, large = plan_of(large_org(500)), plan_of(large_org(5_000))
    assert len(large) < 40_000  # bytes, look-alikes included (at most 100 a question, each person written once)
    assert len(large) < 2 * len(small)  # what grows with the organisation is capped
    assert len(json.loads(large)["people"]) < 500  # of 5,000: the partners, their look-alikes, the options shown
    text = large.decode()
    assert "Quartermaine" not in text and "Zither" not in text  # neither a partner, a look-alike nor an option


def test_a_decoded_plan_asks_and_matches_exactly_as_the_plan_it_was_encoded_from() -> None:
    context, policy = b.context(), Policy()
    session = VerificationSession(lambda: b.NOW)
    session.start(context, large_org(2_000), policy, assess_risk(context, policy), 0)
    decoded = decode_plan(encode_plan(session.plan()))
    assert [replace(q, explanation="") for q in session.plan()] == list(decoded)
    resumed = VerificationSession.from_dict(session.to_dict(), lambda: b.NOW, decoded)
    for said in ("Tim Berners-Lee", "Alan", "I don't know"):
        assert resumed.answer(said) == session.answer(said)


def test_every_person_decodes_to_the_same_values_of_the_same_types_rows_cut_short_included() -> None:
    context, policy = b.context(), Policy()
    session = VerificationSession(lambda: b.NOW, seed="plan-size")
    session.start(context, large_org(2_000), policy, assess_risk(context, policy), 0)
    encoded = encode_plan(session.plan())
    lengths = {len(row) for row in json.loads(encoded)["people"]}
    assert 8 in lengths and min(lengths) == 2  # rows with every field, and rows whose defaults were left out

    def typed_people(plan: tuple[Question, ...]) -> list[list[tuple[type, object]]]:
        return [[(type(v), v) for v in astuple(c)] for q in plan for c in (*q.accepted, *q.confusers, *q.known)]

    assert typed_people(decode_plan(encoded)) == typed_people(session.plan())
