"""How the factors of a verification combine into "verified": pure rules, no I/O.

Three factors, each proving something different:
- KNOWLEDGE: answers to questions only the person should know, measured in bits against an informed impostor.
- POSSESSION: a one-time code Watchword shows in the person's own Teams, which the caller reads out and the agent
  types. The right code proves the caller holds the employee's signed-in Teams (number matching, as in Microsoft
  Authenticator, turned around: the phone call is the channel the attacker controls, Teams is the one they don't).
- MANAGER: the person's manager, asked in Teams "is <name> on the phone with the helpdesk now? Call them if
  unsure", confirmed. It is how someone with thin Microsoft 365 data, or no chat with Watchword, still gets through.

A caller is verified when any `Rule` holds: every strong factor the rule names, plus at least its bits from
questions (plus what sign-in risk adds). Knowledge is part of every rule by design: a stolen, signed-in laptop
passes the code check, and a manager can be fooled by a confident voice, so neither alone resets a password
unless an admin sets a rule's bits to 0.

The code: 6 digits, from `secrets`. Authenticator's 2-digit number only has to defeat blind approval; here the
code IS the proof, and a 2-digit code would let an impostor guess it 1 time in 100 (our target for any impostor
is 1 in 200 at worst, and under 1 in 10,000 for one who guesses at random). 6 digits make a guess 1 in 10^6
(about 20 bits, the strength the questions aim for) and are still easy to read out over the phone. The session
keeps only a salted HMAC of it, inside its sealed (encrypted) part; it is single use and dies with the session.
A wrong code stops the verification and alerts, except one near miss (one digit misheard or two adjacent digits
swapped): genuine callers make exactly those mistakes reading a number over a phone line, and the allowance
only doubles an impostor's chance (a random first guess is a near miss 59 times in 10^6, and then one of about 59
neighbours is right), from 1e-6 to about 2e-6. Input that is not a code at all (wrong length, letters) is
asked again without counting: it is a typing slip, not a guess.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Factor(StrEnum):
    KNOWLEDGE = "knowledge"
    POSSESSION = "possession"  # the code shown in their own Teams
    MANAGER = "manager"  # their manager confirmed in Teams

    @property
    def label(self) -> str:
        return FACTOR_LABELS[self]


FACTOR_LABELS = {
    Factor.KNOWLEDGE: "answers to questions only they should know",
    Factor.POSSESSION: "the code shown in their own Teams",
    Factor.MANAGER: "their manager's confirmation in Teams",
}
STRONG = frozenset({Factor.POSSESSION, Factor.MANAGER})


class Attestation(StrEnum):
    """The manager's answer to "is <name> on the phone with the helpdesk now?"."""

    CONFIRMED = "confirmed"
    UNSURE = "unsure"  # "I don't know": counts for nothing, stops nothing
    DENIED = "denied"  # stops the verification and alerts


class ManagerMode(StrEnum):
    """When the manager is asked."""

    OFF = "off"
    WHEN_NEEDED = "when_needed"  # when no code can be shown, or the questions alone cannot reach the bar
    ALWAYS = "always"


class CodeCheck(StrEnum):
    MATCH = "match"
    NEAR_MISS = "near_miss"  # one digit off, or two adjacent digits swapped: one more try
    WRONG = "wrong"
    MALFORMED = "malformed"  # not a code of the right length: asked again, not counted


@dataclass(frozen=True, slots=True)
class Rule:
    """One way to be verified: every factor in `strong`, and at least `bits` from questions."""

    strong: frozenset[Factor]
    bits: float

    def holds(self, bits: float, held: frozenset[Factor]) -> bool:
        return self.strong <= held and bits >= self.bits

    def describe(self) -> str:
        """'a matching code from their Teams + 6 bits of questions', for the console."""
        parts = [f.label for f in (Factor.POSSESSION, Factor.MANAGER) if f in self.strong]
        if self.bits > 0 or not parts:
            parts.append(f"{self.bits:g} bits of questions")
        return " + ".join(parts)


def with_risk(rules: Iterable[Rule], extra_bits: float) -> tuple[Rule, ...]:
    """Sign-in risk asks for more proof in every way of passing: its extra bits come on top of each rule's."""
    return tuple(Rule(r.strong, r.bits + extra_bits) for r in rules)


def strong_only(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    """After the day's attempt limit, questions alone are no longer enough (someone may be trying names on the
    helpdesk): only the rules that also need a code or the manager stay."""
    return tuple(r for r in rules if r.strong)


def met(rules: Iterable[Rule], bits: float, held: frozenset[Factor]) -> Rule | None:
    """The first rule that holds, or None."""
    return next((r for r in rules if r.holds(bits, held)), None)


def reachable(rules: Iterable[Rule], bits: float, more_bits: float, obtainable: frozenset[Factor]) -> bool:
    """Whether some rule can still hold: `bits` earned, at most `more_bits` still to earn from questions, and the
    strong factors `obtainable` (held, asked and unanswered, or not asked yet but available)."""
    return any(r.strong <= obtainable and bits + more_bits >= r.bits for r in rules)


def useful(rules: Iterable[Rule], bits: float, more_bits: float, held: frozenset[Factor],
           candidates: frozenset[Factor]) -> frozenset[Factor]:
    """Of the `candidates` (strong factors available and not yet asked), those some still reachable rule needs."""
    out: set[Factor] = set()
    for r in rules:
        missing = r.strong - held
        if missing and missing <= candidates and bits + more_bits >= r.bits:
            out |= missing
    return frozenset(out)


def held_factors(bits: float, strong: Iterable[Factor]) -> tuple[Factor, ...]:
    """The factors to show as held, in a fixed order: knowledge when any question was answered for credit."""
    held = set(strong) | ({Factor.KNOWLEDGE} if bits > 0 else set())
    return tuple(f for f in (Factor.POSSESSION, Factor.MANAGER, Factor.KNOWLEDGE) if f in held)


# --- the possession code ------------------------------------------------------------------------------------------
CODE_DIGITS = 6


@dataclass(frozen=True, slots=True)
class SealedCode:
    """What the session keeps of a code: a salted HMAC, never the code. Lives in the session's sealed part."""

    salt: str
    digest: str
    digits: int

    def to_dict(self) -> dict[str, Any]:
        return {"salt": self.salt, "digest": self.digest, "digits": self.digits}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SealedCode:
        return cls(str(d["salt"]), str(d["digest"]), int(d["digits"]))

    def __repr__(self) -> str:
        return f"SealedCode(digits={self.digits})"


def new_code(digits: int = CODE_DIGITS) -> tuple[str, SealedCode]:
    """A fresh code (to show the person once) and what the session keeps of it."""
    if not 4 <= digits <= 10:
        raise ValueError("a code has 4 to 10 digits")
    code = f"{secrets.randbelow(10 ** digits):0{digits}d}"
    salt = secrets.token_hex(16)
    return code, SealedCode(salt, _digest(salt, code), digits)


def spoken(code: str) -> str:
    """'482 913': grouped in threes, as it is read out."""
    return " ".join(code[i:i + 3] for i in range(0, len(code), 3))


def check_code(entered: str, sealed: SealedCode) -> CodeCheck:
    """Compare what the agent typed with the code, in constant time; near misses found by trying the typed
    code's neighbours (a few dozen HMACs), so the code itself is never needed."""
    typed = "".join(ch for ch in entered if not ch.isspace() and ch not in "-.")
    if len(typed) != sealed.digits or not typed.isascii() or not typed.isdigit():
        return CodeCheck.MALFORMED
    if hmac.compare_digest(_digest(sealed.salt, typed), sealed.digest):
        return CodeCheck.MATCH
    if any(hmac.compare_digest(_digest(sealed.salt, n), sealed.digest) for n in _neighbours(typed)):
        return CodeCheck.NEAR_MISS
    return CodeCheck.WRONG


def _neighbours(code: str) -> Iterator[str]:
    """Codes one digit away, or with two adjacent digits swapped."""
    for i, ch in enumerate(code):
        for d in "0123456789":
            if d != ch:
                yield code[:i] + d + code[i + 1:]
    for i in range(len(code) - 1):
        if code[i] != code[i + 1]:
            yield code[:i] + code[i + 1] + code[i] + code[i + 2:]


def _digest(salt: str, code: str) -> str:
    return hmac.new(bytes.fromhex(salt), code.encode("ascii"), hashlib.sha256).hexdigest()
