"""Small helpers for reproducible randomness, ids and names."""

from __future__ import annotations

import base64
import random
import re
import unicodedata
import uuid
from bisect import bisect
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

_SPECIAL = str.maketrans({"ß": "ss", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "å": "a", "Å": "A", "ł": "l",
                          "Ł": "L", "đ": "d", "ð": "d", "þ": "th", "œ": "oe", "Œ": "OE"})


def rng_for(seed: int, *parts: object) -> random.Random:
    """An RNG for one purpose, independent of every other purpose and of call order."""
    return random.Random(":".join([str(seed), *map(str, parts)]))


def guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def immutable_id(rng: random.Random) -> str:
    """What Entra Connect writes as onPremisesImmutableId: base64 of the on-premises objectGUID."""
    return base64.b64encode(rng.getrandbits(128).to_bytes(16, "little")).decode()


def ascii_fold(text: str) -> str:
    """"Bjørn Ødegård" -> "Bjorn Odegard"."""
    text = text.translate(_SPECIAL)
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def mail_local(text: str) -> str:
    """A name as a mailbox local part: folded, lower case, letters, digits and hyphens only."""
    return re.sub(r"[^a-z0-9-]", "", ascii_fold(text).lower())


def slug(text: str, sep: str = "-") -> str:
    return re.sub(r"[^a-z0-9]+", sep, ascii_fold(text).lower()).strip(sep)


def weighted_index(rng: random.Random, cum_weights: Sequence[float]) -> int:
    return bisect(cum_weights, rng.random() * cum_weights[-1])


def cumulative(weights: Sequence[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def as_utc(moment: datetime | None) -> datetime:
    if moment is None:
        return floor_hour(datetime.now(UTC))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class InstantCache:
    """Shares datetime objects between records: a 50,000-user org has millions of timestamps but few
    distinct minutes, and a datetime costs 48 bytes."""

    __slots__ = ("_epoch", "_cache")

    def __init__(self, epoch: datetime) -> None:
        self._epoch = epoch
        self._cache: dict[int, datetime] = {}

    def minutes(self, minutes: int) -> datetime:
        """The instant `minutes` after the epoch."""
        hit = self._cache.get(minutes)
        if hit is None:
            hit = self._cache[minutes] = self._epoch + timedelta(minutes=minutes)
        return hit
