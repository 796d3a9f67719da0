"""Who counts as a person worth asking about: not service accounts, rooms, bots or mailing robots.

Real tenants are full of non-people: "svc-backup", "Room 4.12", "Teams Bot", "no-reply@vendor", shared
mailboxes without a surname. A question whose answer is "the printer" is unanswerable for the genuine
user and, worse, guessable ("noreply"). These heuristics are deliberately conservative: dropping a real
colleague costs a little recall, keeping a robot costs a question.
"""

from __future__ import annotations

from verification.context import Party, Person
from verification.names import normalize, tokens

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


def person_is_human(p: Person) -> bool:
    """A directory user that is a human being: has a given name and a surname, no service words in its
    name or address, and some organisational detail (title or department)."""
    if not p.given_name or not p.surname:
        return False
    if _has_service_words(p.display_name) or _local_part_is_service(p.upn) or _local_part_is_service(p.mail):
        return False
    return bool(p.job_title or p.department)


def party_is_human(party: Party) -> bool:
    """A meeting attendee, chat member, sender or contact that is a human being."""
    if party.person is not None:
        return person_is_human(party.person)
    words = [w for w in tokens(party.name) if w.isalpha()]
    if len(words) < 2 or _has_service_words(party.name):
        return False
    return not is_automated_address(party.address)


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
