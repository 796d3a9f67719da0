"""bench.faults counts what the issue asks; its arithmetic checked here (the run itself is `make bench`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.faults import over_limit


@dataclass
class Decided:
    outcome: str
    details: dict[str, Any] = field(default_factory=dict)


def test_verifications_beyond_the_limit_count_only_when_questions_alone_verified() -> None:
    within = [Decided("verified", {"flags": []})] * 3
    strong_only = [Decided("verified", {"flags": ["after_attempt_limit"]}), Decided("locked_out")]
    assert over_limit(within + strong_only, 3) == 0
    assert over_limit([*within, Decided("verified", {"flags": []})], 3) == 1
    assert over_limit([Decided("not_verified")] * 5, 3) == 0
