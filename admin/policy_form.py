"""The Policy page's form: reading what was typed into a Policy and TenantAccess, with plain messages.

Pure (no I/O): `parse_policy_form(form, current)` gives either values to save or field errors, plus
warnings that do not stop a save (required bits below the NIST-derived 20, a requirement risky callers
can never reach). `changed_fields(before, after)` is what the audit records: only fields that changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from store import TenantAccess
from verification.context import Source
from verification.factors import ManagerMode
from verification.policy import QUESTION_SOURCES, Policy

NIST_BITS = 20.0
MAX_SCOPE_GROUPS = 20
SOURCE_LABELS = {
    Source.MEETINGS: "Meetings (whom they met recently)",
    Source.CHATS: "Teams chats (whom they chat with)",
    Source.MAIL: "Mail (who emailed them; senders and times only)",
    Source.CONTACTS: "Outlook contacts",
    Source.GROUPS: "Groups they belong to",
    Source.HIERARCHY: "Organisation chart (manager, peers, reports)",
    Source.ROLES: "Directory roles",
}
SOURCE_ORDER = [s for s in SOURCE_LABELS if s in QUESTION_SOURCES]


@dataclass(frozen=True)
class NumberField:
    name: str
    label: str
    low: float
    high: float
    whole: bool = True
    unit: str = ""


NUMBERS = (
    NumberField("required_bits", "Bits a caller must earn", 8, 64, whole=False, unit="bits"),
    NumberField("max_questions", "Questions asked at most", 1, 20),
    NumberField("max_wrong", "Wrong answers after which a caller can no longer pass", 1, 10),
    NumberField("session_minutes", "A verification expires after", 2, 60, unit="minutes"),
    NumberField("max_attempts_per_day", "Failed or abandoned verifications of one person in 24 hours before a lockout",
                1, 20),
    NumberField("lockout_hours", "A lockout lasts", 0.25, 168, whole=False, unit="hours"),
    NumberField("medium_risk_extra_bits", "Extra bits for medium sign-in risk", 0, 40, whole=False, unit="bits"),
    NumberField("low_risk_extra_bits", "Extra bits for low sign-in risk", 0, 40, whole=False, unit="bits"),
    NumberField("sign_ins_unavailable_extra_bits", "Extra bits when sign-ins cannot be read", 0, 40, whole=False,
                unit="bits"),
    NumberField("code_required_bits", "With the right code: bits of questions still needed", 0, 64, whole=False,
                unit="bits"),
    NumberField("manager_required_bits", "With their manager's confirmation: bits of questions still needed", 0, 64,
                whole=False, unit="bits"),
    NumberField("code_and_manager_required_bits", "With both: bits of questions still needed", 0, 64, whole=False,
                unit="bits"),
)
CHECKBOXES = ("self_service", "block_on_high_risk", "refuse_when_roles_unknown", "possession_code",
              "strong_factor_after_limit")
MANAGER_MODES = {
    ManagerMode.WHEN_NEEDED: "When the questions alone can't verify them (thin data, no chat with Watchword)",
    ManagerMode.ALWAYS: "In every verification",
    ManagerMode.OFF: "Never",
}


@dataclass
class PolicyForm:
    """The outcome of reading the form: `values` (what to show in the form again), and either a policy and
    access settings to save or `errors` by field name. `warnings` never stop a save."""

    values: dict[str, Any]
    policy: Policy | None = None
    access: TenantAccess | None = None
    errors: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and self.policy is not None and self.access is not None


def form_values(policy: Policy, access: TenantAccess) -> dict[str, Any]:
    """What the form shows for a saved policy (as the strings an input holds)."""
    return {
        "required_bits": _number_text(policy.required_bits),
        "max_questions": str(policy.max_questions),
        "max_wrong": str(policy.max_wrong),
        "session_minutes": _number_text(policy.session_timeout.total_seconds() / 60),
        "max_attempts_per_day": str(policy.max_attempts_per_day),
        "lockout_hours": _number_text(policy.lockout_duration.total_seconds() / 3600),
        "medium_risk_extra_bits": _number_text(policy.medium_risk_extra_bits),
        "low_risk_extra_bits": _number_text(policy.low_risk_extra_bits),
        "sign_ins_unavailable_extra_bits": _number_text(policy.sign_ins_unavailable_extra_bits),
        "code_required_bits": _number_text(policy.code_required_bits),
        "manager_required_bits": _number_text(policy.manager_required_bits),
        "code_and_manager_required_bits": _number_text(policy.code_and_manager_required_bits),
        "possession_code": policy.possession_code,
        "strong_factor_after_limit": policy.strong_factor_after_limit,
        "manager_attestation": policy.manager_attestation.value,
        "security_contact_id": policy.security_contact_id,
        "sources": [s.value for s in SOURCE_ORDER if s in policy.sources],
        "self_service": access.self_service,
        "block_on_high_risk": policy.block_on_high_risk,
        "refuse_when_roles_unknown": policy.refuse_when_roles_unknown,
        "helpdesk_group_id": access.helpdesk_group_id or "",
        "include_group_ids": "\n".join(access.include_group_ids),
        "exclude_group_ids": "\n".join(access.exclude_group_ids),
    }


def parse_policy_form(form: Mapping[str, Any], current: Policy, sources: list[str]) -> PolicyForm:
    """Read the posted form over `current` (knobs the form does not show keep their values).

    `form` is the posted fields (single values); `sources` the values of every checked "sources" box.
    """
    values: dict[str, Any] = {f.name: str(form.get(f.name, "")).strip()[:40] for f in NUMBERS}
    values.update({name: name in form for name in CHECKBOXES})
    values["sources"] = [s for s in sources if s in {x.value for x in SOURCE_ORDER}]
    for name in ("helpdesk_group_id", "include_group_ids", "exclude_group_ids", "security_contact_id"):
        values[name] = str(form.get(name, "")).strip()[:4000]
    values["manager_attestation"] = str(form.get("manager_attestation", "")).strip()[:40]
    result = PolicyForm(values=values)
    try:
        manager_mode = ManagerMode(values["manager_attestation"])
    except ValueError:
        manager_mode = ManagerMode.WHEN_NEEDED
        result.errors["manager_attestation"] = "Choose when their manager is asked."
    contact = _guid(values["security_contact_id"], "security_contact_id", result.errors, optional=True,
                    what="a user's Object ID", where="Entra › Users › the person › Overview")

    numbers: dict[str, float] = {}
    for f in NUMBERS:
        number = _number(values[f.name], f, result.errors)
        if number is not None:
            numbers[f.name] = number
    if not values["sources"]:
        result.errors["sources"] = "Choose at least one source of questions."
    helpdesk = _guid(values["helpdesk_group_id"], "helpdesk_group_id", result.errors, optional=True)
    include = _guids(values["include_group_ids"], "include_group_ids", result.errors)
    exclude = _guids(values["exclude_group_ids"], "exclude_group_ids", result.errors)
    if "max_wrong" in numbers and "max_questions" in numbers and numbers["max_wrong"] > numbers["max_questions"]:
        result.errors["max_wrong"] = ("Wrong answers after which a caller can no longer pass cannot be more than "
                                      f"the questions asked ({int(numbers['max_questions'])}).")
    if include is not None and exclude is not None and set(include) & set(exclude):
        result.errors["exclude_group_ids"] = "A group cannot be both included and excluded."
    if result.errors:
        return result

    policy = replace(
        current,
        required_bits=numbers["required_bits"],
        max_questions=int(numbers["max_questions"]),
        max_wrong=int(numbers["max_wrong"]),
        session_timeout=timedelta(minutes=numbers["session_minutes"]),
        max_attempts_per_day=int(numbers["max_attempts_per_day"]),
        lockout_duration=timedelta(hours=numbers["lockout_hours"]),
        medium_risk_extra_bits=numbers["medium_risk_extra_bits"],
        low_risk_extra_bits=numbers["low_risk_extra_bits"],
        sign_ins_unavailable_extra_bits=numbers["sign_ins_unavailable_extra_bits"],
        sources=frozenset(Source(s) for s in values["sources"]),
        block_on_high_risk=bool(values["block_on_high_risk"]),
        refuse_when_roles_unknown=bool(values["refuse_when_roles_unknown"]),
        possession_code=bool(values["possession_code"]),
        code_required_bits=numbers["code_required_bits"],
        manager_attestation=manager_mode,
        manager_required_bits=numbers["manager_required_bits"],
        code_and_manager_required_bits=numbers["code_and_manager_required_bits"],
        strong_factor_after_limit=bool(values["strong_factor_after_limit"]),
        security_contact_id=contact or "",
    )
    result.policy = policy
    result.access = TenantAccess(helpdesk_group_id=helpdesk, self_service=bool(values["self_service"]),
                                 include_group_ids=tuple(include or ()), exclude_group_ids=tuple(exclude or ()))
    _reachable(policy, result)
    return result


def _reachable(policy: Policy, result: PolicyForm) -> None:
    """Errors for a requirement nobody can meet; warnings for one below guidance or out of risky callers' reach."""
    from_questions = policy.max_questions * policy.max_bits_per_question
    ceiling = from_questions
    if min(r.bits for r in policy.rules()) > ceiling:
        result.errors["required_bits"] = (
            f"No caller could ever pass: {policy.max_questions} questions of at most "
            f"{_number_text(policy.max_bits_per_question)} bits make {_number_text(ceiling)} bits. Ask for fewer "
            "bits or allow more questions.")
        result.policy = result.access = None
        return
    if policy.required_bits < NIST_BITS:
        result.warnings.append(
            f"{_number_text(policy.required_bits)} bits is below the {_number_text(NIST_BITS)} bits Watchword "
            "follows from NIST SP 800-63A-3's guidance for knowledge-based verification: an informed impostor "
            "passes more easily.")
    if policy.required_bits > from_questions:
        result.warnings.append(
            f"Questions alone give at most {_number_text(from_questions)} bits: only callers who also read out the "
            "code from their Teams or whose manager confirms can pass.")
    for rule in policy.rules():
        if rule.strong and rule.bits == 0:
            result.warnings.append(
                f"{_sentence(rule.describe())} verifies a caller without a single question: someone with the "
                "person's stolen, signed-in laptop" + (" and a manager who is fooled" if len(rule.strong) > 1 else "")
                + " gets the password reset.")
        elif rule.strong and rule.bits > policy.required_bits:
            result.warnings.append(f"{_sentence(rule.describe())} asks for more than questions alone do, so it "
                                   "never helps anyone.")
    if not policy.security_contact_id:
        result.warnings.append("No security contact: a wrong code or a \"not me\" is recorded in the audit log and "
                               "told to the agent only. Name someone in Teams to alert.")
    risky = policy.required_bits + policy.medium_risk_extra_bits
    if risky > ceiling:
        result.warnings.append(
            f"Callers with medium sign-in risk need {_number_text(risky)} bits, more than "
            f"{_number_text(ceiling)} can be earned: they can never pass.")


def ways_to_pass(policy: Policy) -> list[str]:
    """The policy's rules in words, for the page: what verifies a caller (before sign-in risk)."""
    return [_sentence(rule.describe()) for rule in policy.rules()]


def warnings_for(policy: Policy) -> list[str]:
    """Warnings about a saved policy (shown each time the Policy page opens)."""
    result = PolicyForm(values={}, policy=policy)
    _reachable(policy, result)
    return result.warnings


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(before, after) restricted to the keys whose values differ: what the audit keeps of a change."""
    keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def audit_view(policy: Policy, access: TenantAccess) -> dict[str, Any]:
    """Policy and access as one flat JSON object (the policy's own to_dict() plus the access settings)."""
    return {**policy.to_dict(), **access.to_dict()}


# --- parsing helpers -----------------------------------------------------------------------------------------
def _number(text: str, f: NumberField, errors: dict[str, str]) -> float | None:
    kind = "a whole number" if f.whole else "a number"
    unit = f" {f.unit}" if f.unit else ""
    where = f"from {_number_text(f.low)} to {_number_text(f.high)}{unit}"
    if not text:
        errors[f.name] = f"{f.label}: enter {kind} {where}."
        return None
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        errors[f.name] = f"{f.label}: “{text}” is not {kind}; enter one {where}."
        return None
    if value != value or (f.whole and not value.is_integer()):  # NaN, or 2.5 questions
        errors[f.name] = f"{f.label}: enter {kind} {where}."
        return None
    if not f.low <= value <= f.high:
        errors[f.name] = f"{f.label} must be {where}; got {_number_text(value)}."
        return None
    return value


def _guid(text: str, name: str, errors: dict[str, str], *, optional: bool, what: str = "a group's Object ID",
          where: str = "Entra › Groups › the group › Overview") -> str | None:
    if not text and optional:
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        errors[name] = (f"“{text[:60]}” is not {what} (a GUID such as "
                        f"00000000-0000-0000-0000-000000000000, from {where}).")
        return None


def _guids(text: str, name: str, errors: dict[str, str]) -> list[str] | None:
    found: list[str] = []
    for line in text.replace(",", "\n").split():
        guid = _guid(line, name, errors, optional=False)
        if guid is None:
            return None
        if guid not in found:
            found.append(guid)
    if len(found) > MAX_SCOPE_GROUPS:
        errors[name] = f"At most {MAX_SCOPE_GROUPS} groups."
        return None
    return found


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
