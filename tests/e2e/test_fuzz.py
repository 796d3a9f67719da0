"""A few seconds of bench.fuzz in every `make test`: hypothesis-made activities, card payloads and console forms and
cursors against a running Watchword; never a 5xx, and the process stays healthy (`make bench` runs it longer)."""

from __future__ import annotations

import pytest

from bench.fuzz import fuzz

pytestmark = pytest.mark.e2e


async def test_hostile_and_malformed_input_never_gets_a_5xx_and_the_process_stays_healthy() -> None:
    # derandomised: the same examples every run, so a red CI is reproducible (bench.fuzz explores at random)
    result = await fuzz(examples=25, users=40, seed=0)
    assert result["server_errors"] == 0, result["first_errors"]
    assert result["healthy"]
    assert result["examples"] >= 4 * 25
