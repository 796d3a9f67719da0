"""How factors combine (verification/factors.py), and the one-time code that proves possession of Teams."""

from __future__ import annotations

import json
import random

import pytest

from verification import Policy
from verification.factors import (
    CodeCheck,
    Factor,
    ManagerMode,
    Rule,
    check_code,
    met,
    new_code,
    reachable,
    spoken,
    strong_only,
    useful,
    with_risk,
)

CODE = frozenset({Factor.POSSESSION})
MANAGER = frozenset({Factor.MANAGER})
NONE: frozenset[Factor] = frozenset()


def test_default_policy_passes_on_questions_alone_or_with_a_code_and_fewer_questions():
    rules = Policy().rules()
    assert met(rules, 20, NONE) == Rule(NONE, 20)
    assert met(rules, 19.9, NONE) is None
    assert met(rules, 6, CODE) == Rule(CODE, 6)
    assert met(rules, 5.9, CODE) is None


def test_manager_confirmation_replaces_some_bits_but_never_all_by_default():
    rules = Policy().rules()
    assert met(rules, 12, MANAGER) == Rule(MANAGER, 12)
    assert met(rules, 0, MANAGER) is None
    assert met(rules, 0, CODE | MANAGER) is None  # even both strong factors need one answer
    assert met(rules, 3, CODE | MANAGER) is not None


def test_every_default_way_of_passing_needs_some_knowledge():
    assert all(r.bits > 0 for r in Policy().rules())


def test_turning_a_factor_off_removes_its_rules():
    assert {r.strong for r in Policy(possession_code=False).rules()} == {NONE, MANAGER}
    assert {r.strong for r in Policy(manager_attestation=ManagerMode.OFF).rules()} == {NONE, CODE}


def test_sign_in_risk_raises_every_way_of_passing():
    rules = with_risk(Policy().rules(), 8)
    assert met(rules, 13.9, CODE) is None and met(rules, 14, CODE) is not None
    assert met(rules, 27.9, NONE) is None


def test_after_the_attempt_limit_questions_alone_no_longer_pass():
    rules = strong_only(Policy().rules())
    assert met(rules, 40, NONE) is None
    assert met(rules, 6, CODE) is not None


def test_reachable_counts_factors_still_obtainable():
    rules = Policy().rules()
    assert not reachable(rules, 0, 8, NONE)  # thin data: 8 bits of questions can't make 20
    assert reachable(rules, 0, 8, CODE)
    assert not reachable(rules, 0, 8, MANAGER)  # the manager replaces 8 bits: 8 + 8 < 20
    assert reachable(rules, 0, 12, MANAGER)


def test_useful_names_only_factors_that_open_a_way_of_passing():
    rules = Policy().rules()
    assert useful(rules, 0, 12, NONE, MANAGER | CODE) == MANAGER | CODE
    assert useful(rules, 0, 4, NONE, MANAGER) == NONE  # even with the manager, 4 bits are too few
    assert useful(rules, 0, 4, CODE, MANAGER) == MANAGER  # with the code held, the manager completes it


def test_rules_describe_themselves_in_words_without_hidden_factors():
    assert Rule(CODE, 6).describe() == "the code shown in their own Teams + 6 bits of questions"
    assert Rule(CODE | MANAGER, 0).describe() == ("the code shown in their own Teams + their manager's "
                                                  "confirmation in Teams")


def test_policy_with_factor_settings_round_trips_through_json():
    p = Policy(possession_code=False, manager_attestation=ManagerMode.ALWAYS, manager_required_bits=10,
               code_required_bits=4, strong_factor_after_limit=False, security_contact_id="abc")
    assert Policy.from_dict(json.loads(json.dumps(p.to_dict()))) == p


# --- the code ----------------------------------------------------------------------------------------------------
def test_code_has_six_digits_and_the_session_keeps_only_a_salted_digest():
    code, sealed = new_code()
    assert len(code) == 6 and code.isdigit()
    assert code not in json.dumps(sealed.to_dict()) and code not in repr(sealed)
    _, again = new_code()
    assert again.salt != sealed.salt


def test_codes_are_not_predictable():
    codes = {new_code()[0] for _ in range(200)}
    assert len(codes) > 190


def test_the_right_code_matches_however_it_is_typed():
    code, sealed = new_code()
    assert check_code(code, sealed) is CodeCheck.MATCH
    assert check_code(spoken(code), sealed) is CodeCheck.MATCH  # "482 913"
    assert check_code(f" {code[:3]}-{code[3:]} ", sealed) is CodeCheck.MATCH


def test_one_misheard_digit_or_two_swapped_digits_is_a_near_miss():
    code, sealed = new_code()
    misheard = code[:2] + str((int(code[2]) + 5) % 10) + code[3:]
    assert check_code(misheard, sealed) is CodeCheck.NEAR_MISS
    if code[0] != code[1]:
        assert check_code(code[1] + code[0] + code[2:], sealed) is CodeCheck.NEAR_MISS


def test_a_different_code_is_wrong_and_a_non_code_is_asked_again():
    code, sealed = new_code()
    far = "".join(str((int(c) + 5) % 10) for c in code)
    assert check_code(far, sealed) is CodeCheck.WRONG
    assert check_code(code[:5], sealed) is CodeCheck.MALFORMED
    assert check_code(code + "1", sealed) is CodeCheck.MALFORMED
    assert check_code("twelve", sealed) is CodeCheck.MALFORMED
    assert check_code("", sealed) is CodeCheck.MALFORMED
    assert check_code("١٢٣٤٥٦", sealed) is CodeCheck.MALFORMED  # non-ASCII digits are not a code we showed


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_guessing_impostor_matches_or_nearly_matches_rarely(seed: int):
    """Out of 20,000 random guesses, none matches and near misses stay near the expected 59 in a million."""
    rng = random.Random(seed)
    code, sealed = new_code()
    results = [check_code(f"{rng.randrange(10 ** 6):06d}", sealed) for _ in range(20_000)]
    assert results.count(CodeCheck.MATCH) <= 1
    assert results.count(CodeCheck.NEAR_MISS) <= 10
