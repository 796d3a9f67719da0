"""bench.peoplesearch end to end, tiny: a 60-person organisation, a few searches of each form, the JSON it ends with.

Not a measurement: whether a search is cheap at 50,000 people is the bench's to report, not this test's.
"""

from __future__ import annotations

import json

import pytest

from bench import peoplesearch


def test_people_search_bench_reports_build_patch_memory_and_each_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert peoplesearch.main(["--people", "60", "--queries", "5"]) == 0
    figures = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert figures["people"] == 60 and figures["accounts"] > 60  # disabled accounts and guests too
    assert figures["build_ms"] >= 0 and figures["traced_mb"] >= 0 and set(figures["patch_ms"]) == {"5", "50", "400"}
    assert set(figures["search_ms"]) == {"whole name", "reversed", "given name", "surname", "principal name",
                                         "two letters", "one letter", "nobody"}
