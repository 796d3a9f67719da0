"""A hand-built organisation around one target, Alan Turing, with every fact the tests need.

Engineering (London HQ): manager Grace Hopper, skip-level Ada Lovelace, five teammates, and 24 more
department colleagues. Product, Sales and Finance people appear only in Alan's meetings, chats and mail:
the org chart an impostor can read does not list them. The tenant has 1,200 people and 300 groups.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from bench.callers import Chart, GroupInfo, Memory, Recollection, Relation
from verification import (
    Attendee,
    Chat,
    ChatType,
    Contact,
    Group,
    GroupKind,
    MailMessage,
    Meeting,
    OrgKnowledge,
    Party,
    Person,
    ResponseStatus,
    Role,
    RoleUsage,
    Sensitivity,
    SignIn,
    UserContext,
)
from verification.names import tokens

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DOMAIN = "contoso.example"


def person(pid: str, given: str, surname: str, title: str = "Software Engineer", dept: str = "Engineering",
           office: str = "London HQ") -> Person:
    upn = f"{given.lower()}.{surname.lower()}@{DOMAIN}"
    return Person(pid, f"{given} {surname}", given, surname, upn, upn, title, dept, office)


ALAN = person("u-alan", "Alan", "Turing")
GRACE = person("u-grace", "Grace", "Hopper", "Engineering Manager")
ADA = person("u-ada", "Ada", "Lovelace", "VP Engineering")
TEAM = (
    person("u-katherine", "Katherine", "Johnson"),
    person("u-jose", "José", "Müller"),
    person("u-barbara", "Barbara", "Liskov"),
    person("u-ken", "Ken", "Thompson", "Senior Software Engineer"),
    person("u-dennis", "Dennis", "Ritchie"),
)
_DEPT_NAMES = [
    ("Edsger", "Dijkstra"), ("Donald", "Knuth"), ("Frances", "Allen"), ("John", "Backus"), ("Niklaus", "Wirth"),
    ("Leslie", "Lamport"), ("Shafi", "Goldwasser"), ("Butler", "Lampson"), ("Fernando", "Corbato"),
    ("Jean", "Sammet"), ("Adele", "Goldberg"), ("Alan", "Kay"), ("Ivan", "Sutherland"), ("Robin", "Milner"),
    ("Tony", "Hoare"), ("Peter", "Naur"), ("Ole-Johan", "Dahl"), ("Kristen", "Nygaard"), ("Juris", "Hartmanis"),
    ("Richard", "Hamming"), ("Marvin", "Minsky"), ("Herbert", "Simon"), ("Allen", "Newell"), ("Judea", "Pearl"),
]
_TITLES = ["Software Engineer", "QA Engineer", "Data Engineer", "Engineering Manager"]
_OFFICES = ["London HQ", "London HQ", "Manchester"]
DEPT = tuple(
    person(f"u-d{i}", g, s, _TITLES[i % len(_TITLES)], "Engineering", _OFFICES[i % len(_OFFICES)])
    for i, (g, s) in enumerate(_DEPT_NAMES)
)
DIJKSTRA, KNUTH = DEPT[0], DEPT[1]  # Software Engineers in London HQ: the impostor's first department guesses
# Outside the department: invisible in OrgKnowledge.
TIM = person("u-tim", "Tim", "Berners-Lee", "Product Manager", "Product")
RADIA = person("u-radia", "Radia", "Perlman", "Account Executive", "Sales")
VINT = person("u-vint", "Vint", "Cerf", "Finance Analyst", "Finance")
HEDY = person("u-hedy", "Hedy", "Lamarr", "Designer", "Product")
XIOMARA = person("u-xio", "Xiomara", "Castillo", "Product Owner", "Product")
OTHERS = tuple(person(f"u-o{i}", g, s, t, d, "London HQ") for i, (g, s, t, d) in enumerate([
    ("Margaret", "Hamilton", "Product Manager", "Product"), ("Claude", "Shannon", "Account Executive", "Sales"),
    ("Hal", "Abelson", "Finance Analyst", "Finance"), ("Lynn", "Conway", "Designer", "Product"),
    ("Carl", "Sassenrath", "Product Owner", "Product"), ("Mary", "Kenneth", "Recruiter", "People"),
    ("Gerald", "Sussman", "Solicitor", "Legal"), ("Evelyn", "Berezin", "Buyer", "Procurement"),
]))
SVC = Person("u-svc", "svc-backup", None, None, f"svc-backup@{DOMAIN}", None, None, None, None)
ROOM = Person("u-room", "Room 4.12 London", None, None, f"room412@{DOMAIN}", None, None, None, None)
SECRET_PERSON = person("u-secret", "Sophie", "Wilson", "Lawyer", "Legal")  # only in private/cancelled events
DECLINED_PERSON = person("u-declined", "Steve", "Furber", "Lawyer", "Legal")  # only in a declined meeting


def party(p: Person) -> Party:
    return Party(p.display_name, p.mail, p)


def meeting(mid: str, days_ago: float, organizer: Person, attendees: list[Person], **kw) -> Meeting:
    start = NOW - timedelta(days=days_ago)
    return Meeting(mid, start, start + timedelta(minutes=30), party(organizer),
                   tuple(Attendee(party(p), ResponseStatus.ACCEPTED) for p in attendees), **kw)


def meetings() -> tuple[Meeting, ...]:
    crowd = [person(f"u-c{i}", f"Crowd{i}", "Member", "Engineer", "Sales") for i in range(40)]
    return (
        meeting("m-1on1", 2, GRACE, [ALAN]),
        meeting("m-standup", 1, GRACE, [ALAN, *TEAM]),
        meeting("m-project", 3, TIM, [ALAN, DIJKSTRA, HEDY], subject="Parser rewrite"),
        meeting("m-sales", 5, ALAN, [RADIA, VINT]),
        meeting("m-xio", -1, XIOMARA, [ALAN]),  # tomorrow
        meeting("m-allhands", 4, ADA, [ALAN, *crowd], subject="Engineering all hands"),
        meeting("m-private", 2, ALAN, [SECRET_PERSON], sensitivity=Sensitivity.PRIVATE),
        meeting("m-cancelled", 1, SECRET_PERSON, [ALAN], is_cancelled=True),
        meeting("m-declined", 3, DECLINED_PERSON, [ALAN], my_response=ResponseStatus.DECLINED),
        meeting("m-focus", 1, ALAN, []),
        meeting("m-room", 6, ALAN, [ROOM, SVC]),
        meeting("m-old", 40, SECRET_PERSON, [ALAN]),
    )


def chats() -> tuple[Chat, ...]:
    return (
        Chat("c-kath", ChatType.ONE_ON_ONE, (party(ALAN), party(TEAM[0])), NOW - timedelta(hours=3)),
        Chat("c-tim", ChatType.ONE_ON_ONE, (party(ALAN), party(TIM)), NOW - timedelta(days=2)),
        Chat("c-hedy", ChatType.GROUP, (party(ALAN), party(HEDY), party(VINT)), NOW - timedelta(days=1), "Launch"),
        Chat("c-old", ChatType.ONE_ON_ONE, (party(ALAN), party(SECRET_PERSON)), NOW - timedelta(days=30)),
        Chat("c-meeting", ChatType.MEETING, (party(ALAN), party(DECLINED_PERSON)), NOW - timedelta(hours=1)),
    )


def mail() -> tuple[MailMessage, ...]:
    return (
        MailMessage(party(GRACE), NOW - timedelta(hours=20)),
        MailMessage(party(RADIA), NOW - timedelta(hours=30)),
        MailMessage(party(KNUTH), NOW - timedelta(days=2)),
        MailMessage(Party("Tech Weekly", "newsletter@news.example"), NOW - timedelta(hours=5)),
        MailMessage(Party("Jane Marketing", "no-reply@vendor.example"), NOW - timedelta(hours=6)),
        MailMessage(party(SECRET_PERSON), NOW - timedelta(days=10)),
    )


COMPILERS = Group("g-compilers", "Compilers Team", GroupKind.MICROSOFT_365, 8)
RUST = Group("g-rust", "Rust Guild", GroupKind.MICROSOFT_365, 14)
ALL_COMPANY = Group("g-all", "All Company", GroupKind.MICROSOFT_365, 1200, is_tenant_wide=True)
ENG_ALL = Group("g-eng", "Engineering All", GroupKind.DISTRIBUTION, 150)
LONDON = Group("g-london", "London Office", GroupKind.DISTRIBUTION, 400)
OTHER_GROUPS = tuple(Group(f"g-o{i}", f"Project {name}", GroupKind.MICROSOFT_365, 5 + i)
                     for i, name in enumerate(["Apollo", "Gemini", "Mercury", "Voyager", "Pioneer", "Viking",
                                               "Cassini", "Galileo", "Juno", "Hubble", "Kepler", "Chandra"]))


def contacts() -> tuple[Contact, ...]:
    return (
        Contact("Joan Clarke", ("joan@bletchley.example",), "Joan", "Clarke"),
        Contact("Katherine Johnson", (TEAM[0].mail or "",), "Katherine", "Johnson", TEAM[0]),
        Contact("Printer Support", ("printers@vendor.example",)),
    )


def sign_ins(days: int = 20) -> tuple[SignIn, ...]:
    return tuple(SignIn(NOW - timedelta(days=d, hours=3), "81.2.69.160", "London", "GB", "Windows 11", "Edge")
                 for d in range(1, days))


def context(**changes) -> UserContext:
    base = UserContext(
        profile=ALAN, fetched_at=NOW, last_password_change=NOW - timedelta(days=80), manager=GRACE, peers=TEAM,
        meetings=meetings(), groups=(COMPILERS, RUST, ALL_COMPANY, ENG_ALL, LONDON), chats=chats(),
        contacts=contacts(), mail=mail(), sign_ins=sign_ins(),
    )
    return replace(base, **changes)


GIVEN_COUNTS = {"alan": 3, "grace": 2, "tim": 6, "radia": 1, "vint": 1, "hedy": 1, "xiomara": 1, "edsger": 1,
                "donald": 9, "katherine": 4, "joan": 3}
SURNAME_COUNTS = {"berners lee": 1, "perlman": 1, "cerf": 1, "lamarr": 1, "castillo": 2, "dijkstra": 1}


def org(**changes) -> OrgKnowledge:
    base = OrgKnowledge(
        population=1200, manager=GRACE, skip_level=ADA, peers=TEAM, department_members=(GRACE, *TEAM, *DEPT),
        others=OTHERS,
        groups=(ALL_COMPANY, ENG_ALL, LONDON, COMPILERS, RUST, *OTHER_GROUPS), group_count=300,
        roles=(RoleUsage("Helpdesk Administrator", 12), RoleUsage("Reports Reader", 4),
               RoleUsage("Global Administrator", 3, True), RoleUsage("User Administrator", 5, True)),
        given_name_counts=GIVEN_COUNTS, surname_counts=SURNAME_COUNTS, internal_domains=(DOMAIN,),
    )
    return replace(base, **changes)


HELPDESK_ROLE = Role("r-helpdesk", "Helpdesk Administrator", False)
GLOBAL_ADMIN = Role("r-global", "Global Administrator", True)


@dataclass(frozen=True)
class Truth:
    """What the genuine Alan knows, by source, with how the public org chart relates each person."""

    relation: dict[str, str]  # display name -> manager / team / skip / dept / other / external
    by_source: dict[str, list[str]]  # source -> names Alan would think of, most salient first


TRUTH = Truth(
    relation={GRACE.display_name: "manager", ADA.display_name: "skip", **{p.display_name: "team" for p in TEAM},
              **{p.display_name: "dept" for p in DEPT}, TIM.display_name: "other", RADIA.display_name: "other",
              VINT.display_name: "other", HEDY.display_name: "other", XIOMARA.display_name: "other",
              "Joan Clarke": "external"},
    by_source={
        "meetings": [GRACE.display_name, TEAM[0].display_name, TIM.display_name, DIJKSTRA.display_name,
                     RADIA.display_name, HEDY.display_name, VINT.display_name, XIOMARA.display_name],
        "chats": [TEAM[0].display_name, TIM.display_name, HEDY.display_name, VINT.display_name],
        "mail": [GRACE.display_name, RADIA.display_name, KNUTH.display_name],
        "contacts": [TEAM[0].display_name, "Joan Clarke"],
        "groups": ["Engineering All", "Compilers Team", "Rust Guild"],
        "roles": ["Helpdesk Administrator"],
        "hierarchy": [GRACE.display_name, TEAM[0].display_name],
    },
)


def memory() -> Memory:
    """What the genuine Alan remembers, for bench.callers.GenuineCaller: TRUTH's lists, each name a thousand
    times likelier to come to mind than the next (so the simulated Alan answers in salience order)."""
    given = {p.display_name: p.given_name for p in (GRACE, ADA, *TEAM, *DEPT, TIM, RADIA, VINT, HEDY, XIOMARA)}
    given["Joan Clarke"] = "Joan"
    topics = {source: [Recollection(n, Relation(TRUTH.relation.get(n, "other")), 1000.0 ** -i, given.get(n))
                       for i, n in enumerate(names)]
              for source, names in TRUTH.by_source.items()}
    return Memory(topics)


def chart(knowledge: OrgKnowledge | None = None) -> Chart:
    """The public org chart an informed impostor reads, from the fixture's OrgKnowledge."""
    o = knowledge or org()
    tiers = [(Relation.MANAGER, [o.manager]), (Relation.TEAM, list(o.peers)), (Relation.REPORT, list(o.direct_reports)),
             (Relation.SKIP, [o.skip_level]), (Relation.DEPT, list(o.department_members))]
    return Chart(
        tiers=[(relation, [p.display_name for p in people if p is not None]) for relation, people in tiers],
        everyone=[p.display_name for p in o.others],
        groups=[GroupInfo(g.name, g.member_count or 0, g.is_tenant_wide) for g in o.groups],
        hints=frozenset(tokens(ALAN.department)) | {"london"},
        roles=[r.name for r in sorted(o.roles, key=lambda r: -r.holders) if not r.is_privileged],
    )
