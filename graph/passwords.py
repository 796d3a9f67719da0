"""Temporary passwords: strong, readable aloud, and impossible to print by accident.

Entra's rules for cloud accounts: 8-256 characters, three of the four classes, not the user's name or
alias, not on the banned list. Ours are 16 characters from all four classes, drawn with `secrets`, without
characters an agent could misread over the phone (0/O/o, 1/l/I/i, quotes, separators).
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime

UPPER = "ABCDEFGHJKMNPQRSTUVWXYZ"
LOWER = "abcdefghjkmnpqrstuvwxyz"
DIGITS = "23456789"
SYMBOLS = "#$%&*+=?@"
LENGTH = 16
# A few entries of Entra's banned-password list a random string could still spell.
_BANNED = ("password", "admin", "welcome", "qwerty", "letmein", "summer", "winter", "spring")


class TemporaryPassword:
    """A password just set on an account. `reveal()` gives it for showing once to the agent; repr() and
    str() never do, so it cannot leak through logs, exceptions or f-strings. Never store it."""

    __slots__ = ("_value", "user_id", "set_at")

    def __init__(self, value: str, user_id: str, set_at: datetime):
        self._value = value
        self.user_id = user_id
        self.set_at = set_at

    def reveal(self) -> str:
        return self._value

    @property
    def must_change_at_next_sign_in(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"TemporaryPassword(user_id={self.user_id!r}, set_at={self.set_at.isoformat()!r}, value=<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> object:
        raise TypeError("a TemporaryPassword cannot be pickled or stored")


def generate_password(avoid: tuple[str | None, ...] = (), length: int = LENGTH) -> str:
    """A random password with every character class, none of the `avoid` words (the user's name parts and
    alias, 3+ letters, case-insensitive) and no banned word."""
    if length < 8:
        raise ValueError("Entra passwords are at least 8 characters")
    classes = (UPPER, LOWER, DIGITS, SYMBOLS)
    alphabet = "".join(classes)
    parts = {p.lower() for text in avoid if text for p in re.split(r"[\s,.\-_#@]+", text) if len(p) >= 3}
    rng = secrets.SystemRandom()
    while True:
        chars = [secrets.choice(c) for c in classes] + [secrets.choice(alphabet) for _ in range(length - 4)]
        rng.shuffle(chars)
        password = "".join(chars)
        lowered = password.lower()
        if not any(p in lowered for p in parts) and not any(w in lowered for w in _BANNED):
            return password
