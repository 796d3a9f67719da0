"""Who counts as a person worth asking about: not service accounts, rooms, bots or mailing robots.

Real tenants are full of non-people: "svc-backup", "Room 4.12", "Teams Bot", "no-reply@vendor", shared
mailboxes without a surname. A question whose answer is "the printer" is unanswerable for the genuine
user and, worse, guessable ("noreply"). These heuristics are deliberately conservative: dropping a real
colleague costs a little recall, keeping a robot costs a question.
"""

from __future__ import annotations

from functools import lru_cache

from verification.context import OrgKnowledge, Party, Person
from verification.names import name_forms, normalize, tokens

_SERVICE_WORDS = frozenset({
    "svc", "service", "room", "bot", "noreply", "donotreply", "system", "scanner", "printer", "mailbox",
    "shared", "automation", "notification", "notifications", "alerts", "alert", "calendar", "helpdesk",
    "servicedesk", "conference", "meeting", "resource", "test", "admin", "administrator", "sync",
    "daemon", "robot", "workflow", "flow", "app", "reception", "equipment",
})
_AUTOMATED_LOCAL_PARTS = frozenset({
    "noreply", "no reply", "donotreply", "do not reply", "newsletter", "news", "notifications", "notification",
    "alerts", "info", "support", "marketing", "mailer daemon", "postmaster", "updates", "digest", "billing",
    "hello", "team", "sales", "events", "invitations", "calendar", "bounce", "feedback", "careers",
})
_AUTOMATED_WORDS = frozenset({"noreply", "newsletter", "notifications", "digest", "donotreply", "mailer"})


# In a job title only the words no human's title has ("Test Engineer" and "Helpdesk Analyst" are people).
_SERVICE_TITLE_WORDS = frozenset({"bot", "svc", "daemon", "noreply", "mailbox"})


@lru_cache(maxsize=65536)  # the same colleagues come up in verification after verification; a Person never changes
def person_is_human(p: Person) -> bool:
    """A directory user that is a human being: a given name and a surname, a display name with no service
    words besides those in the surname, a title and an address that are not a service's, and some
    organisational detail (title or department)."""
    if not p.given_name or not p.surname:
        return False
    if _local_part_is_service(p.upn) or _local_part_is_service(p.mail):
        return False
    if set(tokens(p.job_title)) & _SERVICE_TITLE_WORDS or not _named_like_a_person(p):
        return False
    return bool(p.job_title or p.department)


def _named_like_a_person(p: Person) -> bool:
    """Service words count only where the person's own name does not explain them: "Luc Room" shows given
    name Luc and surname Room; "Room 4.12 London" with given name "Room" does not."""
    given, surname, display = set(tokens(p.given_name)), set(tokens(p.surname)), set(tokens(p.display_name))
    if given & _SERVICE_WORDS:
        return False
    service = display & _SERVICE_WORDS
    if given <= display and surname <= display:
        service -= surname
    return not service


def party_is_human(party: Party, org: OrgKnowledge | None = None) -> bool:
    """A meeting attendee, chat member, sender or contact that is a human being. With `org`, an address in
    the tenant's own domains that no directory account stands behind must carry a given name the tenant
    knows (else it is a shared mailbox or an app, such as "Concur Expense" <concur@...>)."""
    if party.person is not None:
        return person_is_human(party.person)
    words = [w for w in tokens(party.name) if w.isalpha()]
    if len(words) < 2 or _has_service_words(party.name) or is_automated_address(party.address):
        return False
    if org is not None and org.internal_domains and not is_external(party, org.internal_domains):
        return any(_known_given_name(w, org) for w in (*words, " ".join(words[:-1])))
    return True


def _known_given_name(word: str, org: OrgKnowledge) -> bool:
    """Someone in the tenant has this given name; when the tenant's counts are unknown, the nicknames table
    knows it (then non-English names are missed: dropping a colleague costs less than keeping a robot)."""
    if org.given_name_counts:
        return org.given_name_counts.get(word, 0) > 0
    return len(name_forms(word)) > 1


@lru_cache(maxsize=65536)
def is_automated_address(address: str | None) -> bool:
    """no-reply@, newsletter@, notifications@... and anything with those words in the local part."""
    if not address or "@" not in address:
        return False
    local = normalize(address.split("@", 1)[0])
    return local in _AUTOMATED_LOCAL_PARTS or bool(set(local.split()) & _AUTOMATED_WORDS)


def is_external(party: Party, internal_domains: tuple[str, ...]) -> bool:
    """Outside the tenant: no directory user behind it and (when domains are known) a foreign domain."""
    if party.person is not None:
        return False
    if not party.address or "@" not in party.address or not internal_domains:
        return True
    domain = party.address.rsplit("@", 1)[1].lower()
    return not any(domain == d.lower() or domain.endswith("." + d.lower()) for d in internal_domains)


def party_key(party: Party) -> str:
    """A stable identity for a party: the directory id, else the address, else the name."""
    if party.person is not None:
        return party.person.id
    return "ext:" + normalize(party.address or party.name)


def _has_service_words(name: str | None) -> bool:
    return bool(set(tokens(name)) & _SERVICE_WORDS)


def _local_part_is_service(address: str | None) -> bool:
    """svc-backup@, room.412@, bot_teams@ (word-wise, so botha.j@ is still a person)."""
    if not address or "@" not in address:
        return False
    words = tokens(address.split("@", 1)[0])
    return bool(words) and (words[0] in _SERVICE_WORDS or is_automated_address(address))
