"""Sign-in risk: what an attack in progress looks like in the logs."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from tests.verification import builders as b
from verification import Policy, RiskAssessment, RiskLevel, SignIn, VerificationSession, assess_risk, risk_inputs
from verification.context import SignInDigest
from verification.geo import distance_km

NOW = b.NOW


def fail(minutes_ago: float, city="Lagos", country="NG", ip="203.0.113.9", code=50126) -> SignIn:
    return SignIn(NOW - timedelta(minutes=minutes_ago), ip, city, country, error_code=code,
                  failure_reason="Invalid username or password.")


def ok(minutes_ago: float, city="London", country="GB", ip="81.2.69.160", **kw) -> SignIn:
    return SignIn(NOW - timedelta(minutes=minutes_ago), ip, city, country, **kw)


def risk(*recent: SignIn, **ctx) -> RiskAssessment:
    return assess_risk(b.context(sign_ins=(*recent, *b.sign_ins()), **ctx), Policy())


def codes(r: RiskAssessment) -> set[str]:
    return {s.code for s in r.signals}


def test_quiet_account_has_no_risk():
    r = risk()
    assert r.level is RiskLevel.NONE and r.extra_bits_required == 0 and not r.block


def test_failed_sign_in_burst_raises_required_bits():
    r = risk(*[fail(30 - i) for i in range(6)])
    assert "failed_burst" in codes(r)
    assert r.level is RiskLevel.MEDIUM
    assert r.extra_bits_required == Policy().medium_risk_extra_bits > 0
    assert not r.block
    burst = next(s for s in r.signals if s.code == "failed_burst")
    assert "6 wrong-password sign-ins within 15 minutes" in burst.description
    session = VerificationSession(lambda: NOW, seed="s")
    step = session.start(b.context(), b.org(), Policy(), r, 0)
    assert step.bits_required == Policy().required_bits + Policy().medium_risk_extra_bits


def test_burst_from_the_usual_place_looks_like_a_forgotten_password():
    r = risk(*[fail(10 - i, "London", "GB", "81.2.69.160") for i in range(6)])
    burst = next(s for s in r.signals if s.code == "failed_burst")
    assert burst.level is RiskLevel.LOW and "forgotten password" in burst.description
    assert r.extra_bits_required == 0


def test_four_failures_are_not_a_burst():
    assert "failed_burst" not in codes(risk(*[fail(10 - i, "London", "GB") for i in range(4)]))


def test_failures_spread_over_hours_are_not_a_burst():
    assert "failed_burst" not in codes(risk(*[fail(60 * i, "London", "GB") for i in range(6)]))


def test_smart_lockout_failures_count_towards_a_burst():
    assert "failed_burst" in codes(risk(*[fail(10 - i, code=50053) for i in range(5)]))


def test_new_country_success_is_medium_risk():
    r = risk(ok(60, "Paris", "FR", "198.51.100.1"))
    sig = next(s for s in r.signals if s.code == "new_country")
    assert sig.level is RiskLevel.MEDIUM and "FR" in sig.description


def test_new_country_failures_alone_are_low_risk():
    sig = next(s for s in risk(fail(60)).signals if s.code == "new_country")
    assert sig.level is RiskLevel.LOW


def test_impossible_travel_is_detected():
    r = risk(ok(120), ok(60, "Sydney", "AU", "198.51.100.7"))
    assert "impossible_travel" in codes(r)
    sig = next(s for s in r.signals if s.code == "impossible_travel")
    assert "London (GB)" in sig.description and "Sydney (AU)" in sig.description


def test_nearby_cities_are_not_impossible_travel():
    assert "impossible_travel" not in codes(risk(ok(120), ok(100, "Manchester", "GB")))


def test_plausible_flight_is_not_impossible_travel():
    assert "impossible_travel" not in codes(risk(ok(60 * 14), ok(30, "New York", "US")))


def test_coordinates_win_over_the_gazetteer():
    far = ok(30, None, None, "198.51.100.8", latitude=-33.87, longitude=151.21)
    assert "impossible_travel" in codes(risk(ok(90), far))


def test_high_risk_sign_in_blocks():
    r = risk(ok(30, risk_level="high"))
    assert r.level is RiskLevel.HIGH and r.block


def test_confirmed_compromised_blocks_even_after_a_week():
    r = assess_risk(b.context(sign_ins=(ok(60 * 24 * 7, risk_state="confirmedCompromised"), *b.sign_ins())), Policy())
    assert r.block


def test_high_risk_does_not_block_when_policy_says_so():
    r = assess_risk(b.context(sign_ins=(ok(30, risk_level="high"),)), Policy(block_on_high_risk=False))
    assert r.level is RiskLevel.HIGH and not r.block


def test_at_risk_user_is_medium():
    assert risk(ok(30, risk_state="atRisk")).level is RiskLevel.MEDIUM


def test_recent_password_change_is_flagged():
    r = risk(last_password_change=NOW - timedelta(hours=3))
    sig = next(s for s in r.signals if s.code == "recent_password_change")
    assert "3.0 hours ago" in sig.description and r.level is RiskLevel.MEDIUM


def test_missing_sign_in_logs_are_reported_and_cost_bits():
    r = assess_risk(b.context(sign_ins=(), unavailable={"sign_ins": "tenant has no Entra ID P1"}), Policy())
    assert codes(r) == {"sign_ins_unavailable"}
    assert "no Entra ID P1" in r.signals[0].description
    assert r.extra_bits_required == Policy().sign_ins_unavailable_extra_bits
    no_cost = Policy(sign_ins_unavailable_extra_bits=0)
    assert assess_risk(b.context(unavailable={"sign_ins": "403"}), no_cost).extra_bits_required == 0


def test_risk_round_trips_through_dict():
    r = risk(*[fail(30 - i) for i in range(6)])
    assert RiskAssessment.from_dict(r.to_dict()) == r


def test_gazetteer_distance_is_about_right():
    assert 330 < distance_km((51.51, -0.13), (48.86, 2.35)) < 360  # London-Paris ~344 km


def test_a_password_change_watchword_itself_made_is_not_a_risk_signal() -> None:
    changed = b.NOW - timedelta(minutes=5)
    context = replace(b.context(), last_password_change=changed)
    reset_by_watchword = [(changed - timedelta(seconds=2), changed + timedelta(seconds=1))]

    assert "recent_password_change" in codes(assess_risk(context, Policy(), now=b.NOW))
    assert "recent_password_change" not in codes(assess_risk(context, Policy(), now=b.NOW,
                                                             own_resets=reset_by_watchword))
    earlier = [(changed - timedelta(hours=3), changed - timedelta(hours=2, minutes=58))]
    assert "recent_password_change" in codes(assess_risk(context, Policy(), now=b.NOW, own_resets=earlier))


def test_the_risk_is_the_same_on_what_it_reads_alone():
    """A verification waiting for its sign-ins holds `risk_inputs`, not the person's meetings, mail and colleagues:
    the risk weighed on it is the one the whole context gives."""
    for context in (b.context(sign_ins=(fail(5), fail(4), fail(3), fail(2), fail(1), ok(30), *b.sign_ins())),
                    b.context(last_password_change=NOW - timedelta(hours=2)),
                    b.context(sign_ins=(), unavailable={"sign_ins": "403: AuditLog.Read.All not granted"})):
        slim = risk_inputs(context)
        assert assess_risk(slim, Policy()) == assess_risk(context, Policy())
        assert (slim.meetings, slim.mail, slim.chats, slim.groups, slim.contacts, slim.peers, slim.manager) == \
            ((), (), (), (), (), (), None)


def test_the_risk_weighed_on_sign_ins_kept_as_a_digest_is_the_one_weighed_on_the_sign_ins():
    """Sign-ins are kept between verifications as a SignInDigest (a tenth of the memory): it gives back every
    sign-in as read, in Graph's order (sign-ins at the same moment included), so every signal and its wording,
    at any moment and under any policy, is the one the raw sign-ins give."""
    travel = (ok(50, "Sydney", "AU", "1.128.0.7"), ok(40))
    burst = tuple(fail(30 - i) for i in range(6))
    same_moment = (ok(20, "Paris", "FR", "90.1.2.3"), ok(20, "Tokyo", "JP", "126.0.0.1"))
    flagged = (ok(600, risk_level="medium"), ok(60 * 24 * 9, risk_state="atRisk"),
               SignIn(NOW - timedelta(minutes=7, microseconds=123457), "81.2.69.160", "London", "GB",
                      latitude=51.5, longitude=-0.12, compliant=True, managed=False, interactive=False))
    seen: set[str] = set()
    for sign_ins in ((), b.sign_ins(), (*travel, *b.sign_ins()), (*burst, *flagged, *b.sign_ins()),
                     (*same_moment, *reversed(same_moment), *b.sign_ins(30))):
        digest = SignInDigest.of(sign_ins)
        assert digest.sign_ins() == sign_ins and len(digest) == len(sign_ins)
        assert len(digest.kinds) <= 12  # each place, device and outcome once, whatever the count
        for now in (NOW, NOW + timedelta(minutes=5), NOW + timedelta(hours=23, minutes=59)):
            for policy in (Policy(), Policy(failed_burst_count=3, risk_lookback=timedelta(hours=1),
                                            impossible_travel_kmh=50.0, block_on_high_risk=False)):
                kept = b.context(sign_ins=digest.sign_ins())
                assert assess_risk(kept, policy, now=now) == (weighed := assess_risk(b.context(sign_ins=sign_ins),
                                                                                     policy, now=now))
                seen |= codes(weighed)
    assert {"failed_burst", "new_country", "impossible_travel", "risky_sign_in"} <= seen
