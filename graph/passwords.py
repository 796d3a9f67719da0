"""Temporary passwords: strong, readable aloud over the phone, and impossible to print by accident.

Entra's rules for cloud accounts: 8-256 characters, three of the four classes, not the user's name or
alias, not on the banned list. Ours are four groups of four characters joined by hyphens, such as
`Kq7m-xR4t-9wPe-hN3c`: the agent reads it out group by group, the person types exactly what they heard,
hyphens included (so the hyphen is also the symbol class: letters that are hard to say, like `#` or `%`,
are never needed). Only characters nobody can mishear or misread are used: no 0/O/o, 1/l/I/i, and no other
symbols. 16 random characters from 54 is about 92 bits, far beyond any guessing over the phone.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime

UPPER = "ABCDEFGHJKMNPQRSTUVWXYZ"
LOWER = "abcdefghjkmnpqrstuvwxyz"
DIGITS = "23456789"
SEPARATOR = "-"
GROUPS = 4
GROUP_SIZE = 4
LENGTH = GROUPS * GROUP_SIZE  # random characters, separators not counted
# A few entries of Entra's banned-password list a random string could still spell, compared (as Entra does)
# after undoing common digit-for-letter substitutions, and across the separators.
_BANNED = ("password", "admin", "welcome", "qwerty", "letmein", "summer", "winter", "spring", "autumn",
           "microsoft", "office", "changeme")
_LEET = str.maketrans({"3": "e", "4": "a", "5": "s", "7": "t"})


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

    def groups(self) -> list[str]:
        """The password in the groups the agent reads out (one group if it has no separators)."""
        return self._value.split(SEPARATOR)

    @property
    def must_change_at_next_sign_in(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"TemporaryPassword(user_id={self.user_id!r}, set_at={self.set_at.isoformat()!r}, value=<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> object:
        raise TypeError("a TemporaryPassword cannot be pickled or stored")


def generate_password(avoid: tuple[str | None, ...] = (), groups: int = GROUPS, group_size: int = GROUP_SIZE) -> str:
    """A random grouped password (`groups` groups of `group_size`, hyphen-separated) with upper and lower case
    letters and digits, none of the `avoid` words (the user's name parts and alias, 3+ letters,
    case-insensitive) and no banned word."""
    if groups < 2 or groups * group_size + groups - 1 < 8:
        raise ValueError("Entra passwords are at least 8 characters, and ours have a separator")
    classes = (UPPER, LOWER, DIGITS)
    alphabet = "".join(classes)
    parts = {p.lower() for text in avoid if text for p in re.split(r"[\s,.\-_#@]+", text) if len(p) >= 3}
    rng = secrets.SystemRandom()
    while True:
        chars = [secrets.choice(c) for c in classes]
        chars += [secrets.choice(alphabet) for _ in range(groups * group_size - len(classes))]
        rng.shuffle(chars)
        password = SEPARATOR.join("".join(chars[i:i + group_size]) for i in range(0, len(chars), group_size))
        lowered = password.lower()
        plain = lowered.replace(SEPARATOR, "").translate(_LEET)  # a word may run across a separator
        if not any(p in lowered for p in parts) and not any(w in lowered or w in plain for w in _BANNED):
            return password
