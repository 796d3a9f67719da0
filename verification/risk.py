"""Risk from the target's recent sign-ins: is someone else already working on this account?

Knowledge questions alone are weak; sign-in logs say whether the call fits an attack in progress.
Signals (each with a plain-English line for the agent):
* failed_burst — >= 5 wrong-password failures (50126, or 50053 smart lockout) within 15 minutes in the
  last 24 h. From the user's usual IPs/countries it looks like a forgotten password (low); from
  elsewhere it looks like someone guessing (medium).
* new_country — a sign-in in the last 24 h from a country absent from the 30-day history: medium when
  it succeeded, low when it only failed (password spraying from abroad is background noise).
* impossible_travel — consecutive sign-ins further apart than 900 km/h allows, after subtracting how
  vague each location is (medium).
* risky_sign_in — Entra ID Protection's own verdict: riskLevelDuringSignIn high or riskState
  confirmedCompromised (high); medium / atRisk (medium); low (low).
* recent_password_change — the password changed less than 24 h ago: why is the caller asking for a
  reset? (medium).
* sign_ins_unavailable — the logs could not be read (no Entra ID P1, missing permission): reported,
  and the policy decides how many bits that costs.
The level is the highest signal; medium adds bits, high blocks (policy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from verification.context import SignIn, Source, UserContext
from verification.geo import distance_km, locate
from verification.policy import Policy

WRONG_PASSWORD_CODES = frozenset({50126, 50053})
# Entra's clock and ours differ by seconds; its lastPasswordChangeDateTime is set while the PATCH runs.
OWN_RESET_SLACK = timedelta(minutes=1)


class RiskLevel(StrEnum):
    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return list(RiskLevel).index(self)


@dataclass(frozen=True, slots=True)
class RiskSignal:
    code: str
    level: RiskLevel
    description: str


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    level: RiskLevel
    signals: tuple[RiskSignal, ...]
    extra_bits_required: float
    block: bool

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level.value, "extra_bits_required": self.extra_bits_required, "block": self.block,
                "signals": [{"code": s.code, "level": s.level.value, "description": s.description}
                            for s in self.signals]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RiskAssessment:
        signals = tuple(RiskSignal(s["code"], RiskLevel(s["level"]), s["description"]) for s in d["signals"])
        return cls(RiskLevel(d["level"]), signals, float(d["extra_bits_required"]), bool(d["block"]))


NO_RISK = RiskAssessment(RiskLevel.NONE, (), 0.0, False)


def risk_inputs(context: UserContext) -> UserContext:
    """The context with only what `assess_risk` reads (the profile, its clock, the last password change, the
    sign-ins and what could not be read): what a verification holds while its sign-ins are still on their way,
    rather than the person's meetings, mail, chats, groups and colleagues."""
    return UserContext(profile=context.profile, fetched_at=context.fetched_at,
                       last_password_change=context.last_password_change, sign_ins=context.sign_ins,
                       unavailable=context.unavailable)


def assess_risk(context: UserContext, policy: Policy, now: datetime | None = None,
                own_resets: Sequence[tuple[datetime, datetime]] = ()) -> RiskAssessment:
    """`own_resets`: when Watchword itself reset (or may have reset) this password, as (from, to): a change
    then is Watchword's own doing for this same person, not a sign that someone else changed it."""
    now = now or context.fetched_at
    signals: list[RiskSignal] = []
    reason = context.unavailable.get(Source.SIGN_INS.value)
    if reason is not None:
        signals.append(RiskSignal("sign_ins_unavailable", RiskLevel.LOW,
                                  f"Sign-in logs could not be read ({reason}), so account risk is unknown."))
    else:
        ordered = sorted((s for s in context.sign_ins if s.at <= now), key=lambda s: s.at)
        recent = [s for s in ordered if s.at >= now - policy.risk_lookback]
        history = [s for s in ordered if now - policy.history_window <= s.at < now - policy.risk_lookback]
        signals += _failed_burst(recent, history, policy)
        signals += _new_country(recent, history)
        signals += _impossible_travel(recent, policy)
        signals += _risky(recent, [s for s in ordered if s.at >= now - policy.history_window])
    signals += _recent_password_change(context, now, policy, own_resets)
    return _combine(signals, policy, unavailable=reason is not None)


def _combine(signals: Sequence[RiskSignal], policy: Policy, unavailable: bool) -> RiskAssessment:
    level = max((s.level for s in signals), key=lambda lv: lv.rank, default=RiskLevel.NONE)
    extra = {RiskLevel.MEDIUM: policy.medium_risk_extra_bits, RiskLevel.LOW: policy.low_risk_extra_bits}.get(level, 0.0)
    if unavailable:
        extra += policy.sign_ins_unavailable_extra_bits
    block = level is RiskLevel.HIGH and policy.block_on_high_risk
    return RiskAssessment(level, tuple(signals), extra, block)


def _failed_burst(recent: Sequence[SignIn], history: Sequence[SignIn], policy: Policy) -> list[RiskSignal]:
    failures = [s for s in recent if s.error_code in WRONG_PASSWORD_CODES]
    burst = _densest(failures, policy)
    if len(burst) < policy.failed_burst_count:
        return []
    known_ips = {s.ip for s in history if s.succeeded and s.ip}
    known_countries = {s.country_code for s in history if s.succeeded and s.country_code}
    familiar = all(s.ip in known_ips or s.country_code in known_countries for s in burst)
    minutes = round(policy.failed_burst_window.total_seconds() / 60)
    where = ", ".join(sorted({f"{s.city or '?'} ({s.country_code or '?'})" for s in burst}))
    if familiar:
        return [RiskSignal("failed_burst", RiskLevel.LOW,
                           f"{len(burst)} wrong-password sign-ins within {minutes} minutes from the user's usual "
                           f"places ({where}): consistent with a forgotten password.")]
    return [RiskSignal("failed_burst", RiskLevel.MEDIUM,
                       f"{len(burst)} wrong-password sign-ins within {minutes} minutes from {where}, not where "
                       "this user normally signs in: someone may be guessing the password.")]


def _densest(failures: Sequence[SignIn], policy: Policy) -> list[SignIn]:
    """The largest set of failures falling inside one window (two-pointer sweep over sorted times)."""
    best: list[SignIn] = []
    start = 0
    for end, s in enumerate(failures):
        while s.at - failures[start].at > policy.failed_burst_window:
            start += 1
        if end - start + 1 > len(best):
            best = list(failures[start:end + 1])
    return best


def _new_country(recent: Sequence[SignIn], history: Sequence[SignIn]) -> list[RiskSignal]:
    seen = {s.country_code for s in history if s.country_code}
    if not seen:
        return []  # no history to compare with: nothing is "new"
    out: list[RiskSignal] = []
    for country in sorted({s.country_code for s in recent if s.country_code} - seen):
        here = [s for s in recent if s.country_code == country]
        ok = any(s.succeeded for s in here)
        level = RiskLevel.MEDIUM if ok else RiskLevel.LOW
        what = "a successful sign-in" if ok else f"{len(here)} failed sign-in(s)"
        out.append(RiskSignal("new_country", level,
                              f"In the last 24 hours, {what} from {country}, a country not seen in the previous "
                              "30 days."))
    return out


def _impossible_travel(recent: Sequence[SignIn], policy: Policy) -> list[RiskSignal]:
    located = [(s, loc) for s in recent if (loc := locate(s.city, s.country_code, s.latitude, s.longitude))]
    for (a, la), (b, lb) in zip(located, located[1:], strict=False):
        km = distance_km(la[:2], lb[:2]) - la[2] - lb[2]
        if km <= 0:
            continue
        hours = (b.at - a.at).total_seconds() / 3600
        if hours <= 0 or km / hours > policy.impossible_travel_kmh:
            return [RiskSignal("impossible_travel", RiskLevel.MEDIUM,
                               f"Sign-ins from {_place(a)} and {_place(b)} {_duration(hours)} apart: at least "
                               f"{km:,.0f} km, faster than {policy.impossible_travel_kmh:.0f} km/h.")]
    return []


def _risky(recent: Sequence[SignIn], month: Sequence[SignIn]) -> list[RiskSignal]:
    if any(s.risk_level == "high" for s in recent) or any(s.risk_state == "confirmedCompromised" for s in month):
        return [RiskSignal("risky_sign_in", RiskLevel.HIGH,
                           "Microsoft Entra ID Protection rates a recent sign-in as high risk or the account as "
                           "confirmed compromised.")]
    if any(s.risk_level == "medium" for s in recent) or any(s.risk_state == "atRisk" for s in month):
        return [RiskSignal("risky_sign_in", RiskLevel.MEDIUM,
                           "Microsoft Entra ID Protection flags a recent sign-in as medium risk / the account "
                           "as at risk.")]
    if any(s.risk_level == "low" for s in recent):
        return [RiskSignal("risky_sign_in", RiskLevel.LOW, "A recent sign-in was rated low risk by Entra ID.")]
    return []


def _recent_password_change(context: UserContext, now: datetime, policy: Policy,
                            own_resets: Sequence[tuple[datetime, datetime]]) -> list[RiskSignal]:
    changed = context.last_password_change
    if changed is None or not (now - policy.recent_password_change <= changed <= now):
        return []
    if any(start - OWN_RESET_SLACK <= changed <= end + OWN_RESET_SLACK for start, end in own_resets):
        return []  # Watchword's own reset, recorded before and after it: not someone else's doing
    hours = (now - changed).total_seconds() / 3600
    return [RiskSignal("recent_password_change", RiskLevel.MEDIUM,
                       f"The password was changed {_duration(hours)} ago. If the caller did not change it, "
                       "someone else may have.")]


def _place(s: SignIn) -> str:
    return f"{s.city or 'somewhere'} ({s.country_code or '?'})"


def _duration(hours: float) -> str:
    if hours < 1:
        return f"{max(0, round(hours * 60))} minutes"
    return f"{hours:.1f} hours"
