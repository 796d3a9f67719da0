"""A department's people are indexed once (per directory snapshot, by graph/) and every verification in the
department reuses that index: a start costs what depends on the person, not on the size of their department."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.verification import builders as b
from verification import Chat, ChatType, Policy, department, generate_questions
from verification.department import DepartmentIndex, NameIndex, NameNeighbours, name_words
from verification.guessability import SMALL_TIER, rank_people, with_team_partners
from verification.names import close
from verification.questions.chats import chat_everyone
from verification.questions.team import team_shared


def shared_org(**changes):
    """The fixture's organisation as graph/ hands it over: the department with its shared index."""
    plain = b.org(**changes)
    index = DepartmentIndex.build(plain.department_members)
    return replace(plain, department_members=index.members, department_index=index)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the department indexes built (DepartmentIndex.build) while a test runs."""
    made: list[int] = []
    build = DepartmentIndex.build.__func__  # type: ignore[attr-defined]

    def counting(cls, members):
        made.append(len(members))
        return build(cls, members)

    monkeypatch.setattr(DepartmentIndex, "build", classmethod(counting))
    return made


def test_verifications_in_one_department_reuse_its_shared_index_and_build_none(builds: list[int]) -> None:
    org = shared_org()
    builds.clear()
    for target, seed in ((b.context(), "one"), (b.context(profile=b.TEAM[0], peers=b.TEAM[1:]), "two")):
        assert generate_questions(target, org, Policy(), seed)
    assert builds == []


def test_verifications_in_one_department_share_the_organisation_samples_name_index(monkeypatch) -> None:
    """The sample of other departments (OrgKnowledge.others) is the same for nearly everyone in a department: its
    index by name word, for look-alikes, is built by the first verification and kept by the department's index."""
    org = shared_org()
    samples: list[int] = []
    build = NameIndex.build.__func__  # type: ignore[attr-defined]

    def counting(cls, people, like=None, neighbours=None):
        people = tuple(people)
        if people and people[-1].id == org.others[-1].id:
            samples.append(len(people))
        return build(cls, people, like, neighbours)

    monkeypatch.setattr(NameIndex, "build", classmethod(counting))
    alone = generate_questions(b.context(), b.org(), Policy(), "one")  # no shared index: its own
    first = generate_questions(b.context(), org, Policy(), "one")
    generate_questions(b.context(), org, Policy(), "two")
    assert len(samples) == 2
    assert first == alone


def test_without_a_shared_index_each_verification_indexes_its_department_itself(builds: list[int]) -> None:
    generate_questions(b.context(), b.org(), Policy(), "one")
    generate_questions(b.context(), b.org(), Policy(), "two")
    assert builds == [len(b.org().department_members)] * 2


def test_an_index_for_other_people_than_the_department_given_is_not_used(builds: list[int]) -> None:
    stale = DepartmentIndex.build(b.DEPT[:3])  # e.g. from an older snapshot
    builds.clear()
    generate_questions(b.context(), replace(b.org(), department_index=stale), Policy(), "one")
    assert builds == [len(b.org().department_members)]


def test_the_shared_index_asks_the_same_questions_as_one_built_per_verification() -> None:
    for seed in ("a", "b", "c"):
        assert generate_questions(b.context(), shared_org(), Policy(), seed) == \
            generate_questions(b.context(), b.org(), Policy(), seed)


# A department of several hundred: its tiers are too big to list, so decoys are drawn from it at random.
CROWD = tuple(b.person(f"u-e{i}", f"Given{i}", f"Family{i}", "Platform Engineer", "Engineering", "Leeds")
              for i in range(2 * SMALL_TIER))


def big_department():
    """Alan chats only with colleagues from the far end of a big department: the multiple-choice question's right
    answer is in the department's biggest tier."""
    chats = tuple(Chat(f"c-{p.id}", ChatType.ONE_ON_ONE, (b.party(b.ALAN), b.party(p)), b.NOW - timedelta(hours=h))
                  for h, p in enumerate(CROWD[:4], start=1))
    context = b.context(chats=chats, meetings=(), mail=(), contacts=())
    org = shared_org(department_members=(b.GRACE, *b.TEAM, *b.DEPT, *CROWD))
    return context, org


def test_decoys_from_a_big_department_are_from_the_right_answers_tier_and_false_by_the_wording() -> None:
    context, org = big_department()
    policy = Policy()
    ranking = with_team_partners(rank_people(context, org), team_shared(context, org, policy))
    true = set(chat_everyone(context, policy, org))
    checked = 0
    for seed in map(str, range(20)):
        for q in generate_questions(context, org, policy, seed):
            if q.kind != "chats.chatted.choice":
                continue
            right = q.accepted[0].key
            tier = ranking.rank_of(right)
            assert len(ranking.named[tier][1]) > SMALL_TIER  # the sampled path
            decoys = [c.key for c in q.confusers]
            assert len(decoys) == policy.multiple_choice_options - 1 == len(set(decoys))
            assert not set(decoys) & true
            assert all(ranking.rank_of(d) == tier for d in decoys)
            checked += 1
    assert checked >= 20


def test_decoys_from_a_big_department_are_drawn_across_it_and_the_same_from_call_to_call() -> None:
    """Drawn at random positions of the whole department (not its first few), and keyed by the person and the right
    answer, not the call: calling again must not show new decoys around the same right answer."""
    context, org = big_department()
    calls = [{q.accepted[0].key: frozenset(c.key for c in q.confusers)
              for q in generate_questions(context, org, Policy(), seed) if q.kind == "chats.chatted.choice"}
             for seed in map(str, range(10))]
    assert all(call == calls[0] for call in calls)
    decoys = set().union(*calls[0].values())
    assert len(decoys) >= 8 and max(int(d.removeprefix("u-e")) for d in decoys) > SMALL_TIER


def test_a_new_snapshots_index_keeps_the_typo_work_of_the_last_when_the_names_are_the_same() -> None:
    old = DepartmentIndex.build(b.DEPT)
    assert old.names.close_words("dijkstar") == ("dijkstra",)
    moved = DepartmentIndex.build((*b.DEPT[1:], b.DEPT[0]), like=old)  # same names, the directory's order changed
    assert moved.names._close is old.names._close and "dijkstar" in moved.names._close
    renamed = DepartmentIndex.build((*b.DEPT, b.person("u-new", "Grace", "Brewster")), like=old)
    assert renamed.names._close is not old.names._close and renamed.names.close_words("brewstr") == ("brewster",)


def directory_words(*people) -> set[str]:
    return {w for p in people for w in name_words(p)}


def test_typo_neighbours_worked_out_once_for_the_directory_find_what_searching_the_department_finds() -> None:
    people = (b.GRACE, *b.TEAM, *b.DEPT, *CROWD[:50], b.person("u-x1", "Ada", "Lovelace"),
              b.person("u-x2", "Adda", "Lovelase"), b.person("u-x3", "Edsger", "Dijkstar"))
    neighbours = NameNeighbours.build(directory_words(*people))
    searched, shared = DepartmentIndex.build(people[:-2]), DepartmentIndex.build(people[:-2], neighbours=neighbours)
    probes = sorted(directory_words(*people)) + ["dijkstr", "lovelac", "brewstr", "al", "nobodyatall"]
    for word in probes:
        assert set(shared.names.close_words(word)) == set(searched.names.close_words(word)), word
    assert set(shared.names.close_words("dijkstar")) == {"dijkstra"}  # "Dijkstar" is not in this department


def test_a_big_index_finds_an_outsiders_typos_as_names_close_does_and_remembers_a_bounded_number(monkeypatch) -> None:
    """A word the directory does not know (an outsider's name) is searched for in a big index length by length, each
    within the budget names.close gives the pair: the same words as comparing it with every word."""
    index = DepartmentIndex.build(CROWD).names
    assert len(index.words) > department.BY_LENGTH_FROM
    probes = ["given1", "givne12", "famly123", "family1234", "given", "gvien7", "familyy99", "xyz", "g", "family"]
    for word in probes:
        assert set(index.close_words(word)) == {w for w in index.words if close(word, w)}, word
    monkeypatch.setattr(department, "MAX_CLOSE_MEMO", 3)
    for word in ("aaaaaa", "bbbbbb", "cccccc", "dddddd", "eeeeee"):
        index.close_words(word)
        assert len(index._close) <= 3


def test_a_new_snapshots_typo_neighbours_carry_over_the_last_ones_and_equal_those_worked_out_afresh() -> None:
    before = directory_words(b.GRACE, *b.TEAM, *b.DEPT, *CROWD[:40])
    after = (before - {"given3", "family7"}) | {"dijkstar", "brewstr", "given3x"}
    carried = NameNeighbours.build(after, like=NameNeighbours.build(before))
    assert carried.near == NameNeighbours.build(after).near
    assert "given3" not in carried.near and "dijkstra" in carried.near["dijkstar"]


def the_old_tiers(context, org):
    """The department's tiers as they were once worked out per start: sets copied from the whole department."""
    department = org.department_index
    me = context.profile
    seen = {me.id, *(p.id for p in (context.manager or org.manager, org.skip_level) if p),
            *(p.id for p in (*context.peers, *org.peers, *context.direct_reports, *org.direct_reports))}
    left = department.ids - seen
    office, title = department.same_office(me.office_location), department.similar_title(me.job_title)
    close = left & office & title
    near = (left & (office | title)) - close
    return close, near, left - close - near


@pytest.mark.parametrize("office,title", [("Leeds", "Platform Engineer"), ("London HQ", "Software Engineer"),
                                          (None, "QA Engineer"), ("Manchester", None), (None, None)])
def test_a_persons_department_tiers_are_views_of_the_shared_index_holding_what_copied_sets_held(office, title) -> None:
    _, org = big_department()
    me = replace(b.ALAN, office_location=office, job_title=title)
    context = b.context(profile=me)
    ranking = rank_people(context, org)
    tiers = [ids for label, ids in ranking.named if label.startswith(("department", "rest of the department"))]
    assert len(tiers) == 3
    everyone = {p.id for p in org.department_members} | {"u-nobody", "ext:someone@example.com"}
    for view, copied in zip(tiers, the_old_tiers(context, org), strict=True):
        assert view.department is org.department_index  # the snapshot's index, not a copy of it
        assert len(view) == len(copied) and set(view) == copied
        assert {pid for pid in everyone if pid in view} == copied
        less = frozenset(list(copied)[:3]) | {"u-nobody"}
        assert set(view - less) == copied - less and len(view - less) == len(copied - less)


def test_a_wordings_exclusions_rule_out_what_the_joined_tiers_did_and_leave_the_same_tiers() -> None:
    context, org = big_department()
    policy = Policy()
    ranking = with_team_partners(rank_people(context, org), team_shared(context, org, policy))
    people = [p.id for p in org.department_members] + [p.id for p in b.OTHERS] + ["ext:someone@example.com"]
    for labels in ([], [label for label, _ in ranking.named[:4]], [label for label, _ in ranking.named]):
        ruled, joined = ranking.ruled_out(*labels), ranking.ids(*labels)
        assert [pid for pid in people if pid in ruled] == [pid for pid in people if pid in joined]
        extra = frozenset(people[::97])
        assert ranking.tiers(people[:5], ruled | extra) == ranking.tiers(people[:5], joined | extra)


def test_a_start_leaves_the_shared_index_as_it_found_it() -> None:
    """Shared by every verification in the department until the next snapshot: frozen, and nothing a start does
    changes what it holds."""
    context, org = big_department()
    index = org.department_index
    held = (index.members, index.ids, dict(index.by_office), dict(index.by_title), dict(index.both), dict(index.keys),
            index.humans, dict(index.names.ids_by_word))
    for seed in ("a", "b"):
        assert generate_questions(context, org, Policy(), seed)
    assert held == (index.members, index.ids, dict(index.by_office), dict(index.by_title), dict(index.both),
                    dict(index.keys), index.humans, dict(index.names.ids_by_word))
    with pytest.raises(AttributeError):
        index.keys = {}  # type: ignore[misc]
