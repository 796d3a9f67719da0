"""Accounts every real tenant has that are not its people: guests and disabled accounts.

Guests are B2B collaborators invited from other organisations: `userType` Guest, a UPN rewritten as
`name_theirdomain.com#EXT#@ourtenant.onmicrosoft.com`, their own mail address. Disabled accounts are former
employees whose account was switched off (`accountEnabled` false) and kept. Neither is someone the helpdesk may
verify or whose password it may reset. They are added after everything else, from their own seeded generator,
so the rest of the organisation (and any benchmark's ground truth) is unchanged by them.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from devtenant.model import User

GUEST_SHARE = 0.01
DISABLED_SHARE = 0.01
_GUEST_DOMAINS = ("fabrikam.example", "northwind.example", "adatum.example", "litware.example")


def strangers(seed: int, users: int, tenant_domain: str, onmicrosoft: str, now: datetime,
              names: list[tuple[str, str]]) -> list[User]:
    """Guests and disabled accounts for an organisation of `users` (at least two of each)."""
    rng = random.Random(f"{seed}/strangers")
    out: list[User] = []
    for _ in range(max(2, round(users * GUEST_SHARE))):
        given, surname = rng.choice(names)
        external = f"{given}.{surname}".lower().replace("'", "").replace(" ", "") + f"@{rng.choice(_GUEST_DOMAINS)}"
        upn = external.replace("@", "_") + f"#EXT#@{onmicrosoft}"
        out.append(_account(rng, f"{given} {surname} (Guest)", given, surname, upn, external, now,
                            user_type="Guest", title=None, department=None))
    for n in range(max(2, round(users * DISABLED_SHARE))):
        given, surname = rng.choice(names)
        local = f"{given}.{surname}.{n}".lower().replace("'", "").replace(" ", "")
        out.append(_account(rng, f"{given} {surname}", given, surname, f"{local}@{tenant_domain}",
                            f"{local}@{tenant_domain}", now, enabled=False, title="Former employee", department=None))
    return out


def _account(rng: random.Random, display: str, given: str, surname: str, upn: str, mail: str, now: datetime, *,
             user_type: str = "Member", enabled: bool = True, title: str | None, department: str | None) -> User:
    created = now - timedelta(days=rng.randint(60, 900))
    return User(id=str(uuid.UUID(int=rng.getrandbits(128), version=4)), display_name=display, given_name=given,
                surname=surname, user_principal_name=upn, mail=mail, job_title=title, department=department,
                office_location=None, city=None, country=None, usage_location=None, manager_id=None,
                employee_id=None, business_phones=[], mobile_phone=None, created_date_time=created,
                last_password_change_date_time=created, account_enabled=enabled, user_type=user_type)
