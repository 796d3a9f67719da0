"""The Adaptive Card 1.5 schema, read from ../shared/schemas beside the checkout or $WATCHWORD_SCHEMAS_DIR."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft6Validator

ROOT = Path(__file__).resolve().parents[2]
CARD_SCHEMA = "adaptive-card-1.5.schema.json"


def _schemas_dir() -> Path | None:
    for candidate in (os.environ.get("WATCHWORD_SCHEMAS_DIR"), ROOT.parent / "shared" / "schemas"):
        if candidate and (Path(candidate) / CARD_SCHEMA).is_file():
            return Path(candidate)
    return None


@cache
def _validator() -> Draft6Validator | None:
    folder = _schemas_dir()
    if folder is None:
        return None
    return Draft6Validator(json.loads((folder / CARD_SCHEMA).read_text(encoding="utf-8")))


def assert_valid_card(card: Any) -> None:
    """Fail with every schema error of the card; skip (saying where the schema goes) when it is missing."""
    validator = _validator()
    if validator is None:
        pytest.skip(f"{CARD_SCHEMA} not found: put it in {ROOT.parent / 'shared' / 'schemas'} "
                    "or point WATCHWORD_SCHEMAS_DIR at the folder holding it")
    errors = sorted(validator.iter_errors(card), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors)
    assert card.get("version") == "1.5"
