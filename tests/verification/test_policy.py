"""Policy defaults are the documented ones and survive the session's JSON."""

from __future__ import annotations

import json
from datetime import timedelta

from verification import Policy, Source


def test_defaults_match_the_issue():
    p = Policy()
    assert p.required_bits == 20 and p.max_questions == 8 and p.max_wrong == 2
    assert p.session_timeout == timedelta(minutes=10) and p.max_attempts_per_day == 3
    assert p.guesses_per_question == 2 and not p.show_subjects and p.max_bits_per_question <= 10


def test_policy_round_trips_through_json():
    p = Policy(required_bits=24, sources=frozenset({Source.MEETINGS, Source.CHATS}), guesses_per_question=1,
               session_timeout=timedelta(minutes=5), show_subjects=True)
    assert Policy.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert Policy.from_dict({}) == Policy()
