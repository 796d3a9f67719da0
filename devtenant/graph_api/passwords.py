"""`PATCH /users/{id}`: the password reset Watchword performs, with Entra's rules.

What Graph checks, in the order it answers:
1. the token's permissions: `passwordProfile` needs User-PasswordProfile.ReadWrite.All (or
   User.ReadWrite.All / Directory.ReadWrite.All); other properties need User.ReadWrite.All or
   Directory.ReadWrite.All (`accountEnabled` also User.EnableDisableAccount.All) -> 403;
2. the target exists -> 404;
3. for a password: the app's service principal holds a directory role that may reset passwords,
   and that role may reset *this* user (Entra's "who can reset passwords" table; members of
   role-assignable groups only by Privileged Authentication / Global Administrators) -> 403
   Authorization_RequestDenied;
4. the user is mastered on-premises (synced, federated domain) -> 400;
5. the password meets Entra's complexity rules -> 400.
Then 204. The password is stored only as a salted scrypt hash, and never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from devtenant.graph_api.router import GraphError, GraphRequest, GraphResponse, Router, bad_request, not_found
from devtenant.model import Org, User
from devtenant.state import RESET_CAPABLE_ROLES

PASSWORD_WRITERS = {"User-PasswordProfile.ReadWrite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"}
USER_WRITERS = {"User.ReadWrite.All", "Directory.ReadWrite.All"}
ENABLE_WRITERS = USER_WRITERS | {"User.EnableDisableAccount.All"}

DENIED = "Insufficient privileges to complete the operation."
COMPLEXITY = ("The specified password does not comply with password complexity requirements. "
              "Please provide a different password.")
ON_PREMISES = ("Unable to update the specified properties for on-premises mastered Directory Sync objects "
               "or objects currently undergoing migration.")

# Entra's "who can reset passwords" table: for each reset-capable role of the caller, the roles a
# target may hold (besides none). Privileged Authentication and Global Administrators reset anyone.
_BASIC = {"Directory Readers", "Guest Inviter", "Password Administrator"}
_READERS = {"Message Center Reader", "Reports Reader", "Usage Summary Reports Reader"}
RESETTABLE_ROLES: dict[str, set[str] | None] = {
    "Password Administrator": _BASIC,
    "Helpdesk Administrator": _BASIC | _READERS | {"Helpdesk Administrator"},
    "Authentication Administrator": _BASIC | _READERS | {"Authentication Administrator"},
    "User Administrator": _BASIC | _READERS | {"Helpdesk Administrator", "User Administrator",
                                               "Groups Administrator"},
    "Privileged Authentication Administrator": None,  # anyone
    "Global Administrator": None,
}

# Simple string properties PATCH applies (Graph name -> User attribute).
_STRING_PROPS = {
    "displayName": "display_name", "givenName": "given_name", "surname": "surname", "jobTitle": "job_title",
    "department": "department", "officeLocation": "office_location", "city": "city", "country": "country",
    "usageLocation": "usage_location", "mobilePhone": "mobile_phone", "employeeId": "employee_id",
}
_PASSWORD_PROFILE_KEYS = {"password", "forceChangePasswordNextSignIn", "forceChangePasswordNextSignInWithMfa"}

# Entra's allowed password characters: ASCII letters and digits, these symbols and the space.
_SYMBOLS = set("@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> ")
# A few entries of Entra's global banned-password list (compared after undoing common substitutions).
_BANNED = {"password", "welcome", "letmein", "qwerty", "changeme", "iloveyou", "admin", "summer", "winter",
           "spring", "autumn", "microsoft", "office"}
_LEET = str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s",
                       "!": "i"})


def register(router: Router) -> None:
    router.route("PATCH", "/users/{id}", permissions=sorted(PASSWORD_WRITERS | ENABLE_WRITERS))(update_user)


async def update_user(req: GraphRequest) -> GraphResponse:
    body = req.body
    if not isinstance(body, dict):
        raise bad_request("Empty Payload. JSON content expected.", "Request_BadRequest")
    body = _without_annotations(body)
    for key in body:
        if key not in _STRING_PROPS and key not in {"passwordProfile", "accountEnabled", "businessPhones"}:
            raise bad_request(f"Invalid property '{key}'.", "Request_BadRequest")
    _check_permissions(req, body)

    org = req.state.org
    user = org.user(req.params["id"])
    if user is None:
        raise not_found(f"Resource '{req.params['id']}'")

    profile = body.get("passwordProfile")
    if profile is not None:
        profile = _parse_profile(profile)
        _check_may_reset(org, req.state.sp_object_id, user)
    if _on_premises_mastered(org, user):
        raise bad_request(ON_PREMISES, "Request_BadRequest")
    hashed = None
    if profile is not None and "password" in profile:
        if not password_meets_complexity(profile["password"], user):
            raise bad_request(COMPLEXITY, "Request_BadRequest")
        # scrypt takes ~60 ms of CPU and lets go of the GIL: hashed on a thread, the other requests go on meanwhile
        # (before anything is applied, so no request sees half of this one).
        hashed = await asyncio.to_thread(hash_password, profile["password"])

    _apply_properties(user, body)
    if profile is not None:
        if hashed is not None:
            user.password = hashed
            user.last_password_change_date_time = datetime.now(UTC)
            user.password_set_at = time.time()
        user.force_change_password_next_sign_in = bool(profile.get("forceChangePasswordNextSignIn", False))
        user.force_change_password_next_sign_in_with_mfa = bool(
            profile.get("forceChangePasswordNextSignInWithMfa", False))
    org.touch(user)
    return GraphResponse(status=204)


# --- the rules ------------------------------------------------------------------------------------
def _check_permissions(req: GraphRequest, body: dict[str, Any]) -> None:
    roles = req.roles
    needs: list[set[str]] = []
    if "passwordProfile" in body:
        needs.append(PASSWORD_WRITERS)
    if "accountEnabled" in body:
        needs.append(ENABLE_WRITERS)
    if set(body) - {"passwordProfile", "accountEnabled"}:
        needs.append(USER_WRITERS)
    if any(not (roles & alternatives) for alternatives in needs):
        raise GraphError(403, "Authorization_RequestDenied", DENIED)


def _without_annotations(obj: dict[str, Any]) -> dict[str, Any]:
    """Drop OData annotations such as the "@odata.type" the SDKs send with every object."""
    return {k: v for k, v in obj.items() if not k.startswith("@")}


def _parse_profile(profile: Any) -> dict[str, Any]:
    if isinstance(profile, dict):
        profile = _without_annotations(profile)
    if not isinstance(profile, dict) or not set(profile) <= _PASSWORD_PROFILE_KEYS:
        raise bad_request("Invalid value specified for property 'passwordProfile' of resource 'User'.",
                          "Request_BadRequest")
    if "password" in profile and not isinstance(profile["password"], str):
        raise bad_request("Invalid value specified for property 'passwordProfile' of resource 'User'.",
                          "Request_BadRequest")
    for flag in ("forceChangePasswordNextSignIn", "forceChangePasswordNextSignInWithMfa"):
        if flag in profile and not isinstance(profile[flag], bool):
            raise bad_request(f"Invalid value specified for property '{flag}'.", "Request_BadRequest")
    return profile


def effective_role_names(org: Org, principal_id: str) -> set[str]:
    """Roles held directly or through a (role-assignable) group the principal belongs to."""
    names = {r.display_name for r in org.roles_of(principal_id)}
    for group in org.transitive_member_of(principal_id):
        if group.is_assignable_to_role:
            names |= {r.display_name for r in org.roles_of(group.id)}
    return names


def may_reset(org: Org, caller_id: str, target: User) -> bool:
    """Whether a principal's directory roles let it reset this user's password (Entra's table)."""
    caller_roles = effective_role_names(org, caller_id) & RESET_CAPABLE_ROLES
    target_roles = effective_role_names(org, target.id)
    in_role_group = any(g.is_assignable_to_role for g in org.transitive_member_of(target.id))
    for role in caller_roles:
        allowed = RESETTABLE_ROLES.get(role, _BASIC)
        if allowed is None:
            return True
        if not in_role_group and target_roles <= allowed:
            return True
    return False


def _check_may_reset(org: Org, sp_object_id: str, target: User) -> None:
    if not may_reset(org, sp_object_id, target):
        raise GraphError(403, "Authorization_RequestDenied", DENIED)


def _on_premises_mastered(org: Org, user: User) -> bool:
    if user.on_premises_sync_enabled:
        return True
    domain = user.user_principal_name.rsplit("@", 1)[-1].lower()
    return any(d.id.lower() == domain and d.authentication_type == "Federated" for d in org.domains)


def password_meets_complexity(password: str, user: User) -> bool:
    """Entra's rules for cloud accounts: 8-256 allowed characters, 3 of 4 character classes, not
    the user's alias or a 3+ letter part of their name, not a banned word."""
    if not 8 <= len(password) <= 256:
        return False
    if any(not (c.isascii() and (c.isalnum() or c in _SYMBOLS)) for c in password):
        return False
    classes = (
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(c in _SYMBOLS for c in password),
    )
    if sum(classes) < 3:
        return False
    lowered = password.lower()
    alias = user.user_principal_name.split("@", 1)[0].lower()
    parts = {alias, *re.split(r"[\s,.\-_#@]+", alias)}
    parts |= {p.lower() for p in re.split(r"[\s,.\-_#\t]+", user.display_name or "")}
    if any(len(p) >= 3 and p in lowered for p in parts):
        return False
    normalised = lowered.translate(_LEET)
    return not any(word in normalised for word in _BANNED)


def _apply_properties(user: User, body: dict[str, Any]) -> None:
    for key, attr in _STRING_PROPS.items():
        if key in body:
            value = body[key]
            if value is not None and not isinstance(value, str):
                raise bad_request(f"Invalid value specified for property '{key}' of resource 'User'.",
                                  "Request_BadRequest")
            setattr(user, attr, value)
    if "accountEnabled" in body:
        if not isinstance(body["accountEnabled"], bool):
            raise bad_request("Invalid value specified for property 'accountEnabled' of resource 'User'.",
                              "Request_BadRequest")
        user.account_enabled = body["accountEnabled"]
    if "businessPhones" in body:
        phones = body["businessPhones"]
        if not isinstance(phones, list) or not all(isinstance(p, str) for p in phones):
            raise bad_request("Invalid value specified for property 'businessPhones' of resource 'User'.",
                              "Request_BadRequest")
        user.business_phones = list(phones)


# --- storing passwords ----------------------------------------------------------------------------
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    """A salted scrypt hash, "scrypt$<salt hex>$<hash hex>": the only form devtenant keeps."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(user: User, password: str) -> bool:
    """Whether `password` is the one last set on this user through PATCH."""
    if not user.password or not user.password.startswith("scrypt$"):
        return False
    _, salt_hex, digest_hex = user.password.split("$")
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), dklen=32, **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)
