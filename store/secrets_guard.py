"""Refuse JSON that carries something shaped like a secret, so a bug cannot persist one.

Checked on the free-form JSON the store accepts (audit details, a session's risk summary and policy
snapshot). Keys are compared after lower-casing and dropping everything but letters and digits, so
"clientSecret", "client_secret" and "Client-Secret" are all caught. "answer" is on the list because a
caller's answers to verification questions are knowledge factors: they must never be stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

_SECRET_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "credential",
    "apikey",
    "privatekey",
    "authorization",
    "cookie",
    "answer",
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


@lru_cache(maxsize=4096)  # the same few hundred keys (audit details, policy snapshots) on every write
def looks_like_secret_key(key: str) -> bool:
    folded = _NOT_ALNUM.sub("", key.lower())
    return any(word in folded for word in _SECRET_WORDS)


def reject_secret_keys(value: Any, where: str) -> None:
    """Raise ValueError naming the first secret-looking key anywhere in nested dicts and lists.

    The message names the key, never its value.
    """
    if isinstance(value, Mapping):
        for key, item in value.items():
            if looks_like_secret_key(str(key)):
                raise ValueError(f"{where}: refusing to store key {key!r}, which looks like a secret")
            reject_secret_keys(item, where)
    elif isinstance(value, list | tuple):
        for item in value:
            reject_secret_keys(item, where)


def clean_json(value: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    """Check `value` for secret-looking keys and return its JSON round-trip.

    The round-trip is exactly what the database gives back (tuples become lists, keys become strings),
    so anything computed from the returned value (the audit hash) matches what is read later.
    """
    if value is None:
        return {}
    reject_secret_keys(value, where)
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where} must be plain JSON: {exc}") from None
