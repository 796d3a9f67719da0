"""Adaptive Cards (version 1.5, what Teams renders) from templates/cards/*.json.j2.

The templates are JSON with Jinja2 holes, and every hole is a whole JSON value: the environment's
`finalize` turns each `{{ expression }}` into a JSON literal (`json.dumps`), so a display name holding
quotes, braces or newlines can never end a string or add a key. Text is composed in the expression
(`{{ "Question " ~ n }}`), never by splicing into a quoted string in the template.

Text that comes from the directory (names, titles, departments, group names inside a question) is
shown with the `plain` macro: a RichTextBlock whose TextRun Adaptive Cards never reads as markdown,
so "[click me](https://evil.example)" stays text. Long values are clipped.

Buttons are `Action.Execute` (Universal Actions: Teams sends an `adaptiveCard/action` invoke and the
card is replaced by the answer) with an `Action.Submit` fallback carrying the same data (a message with
`value`); the bot handles both the same way (see bot/agent.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from microsoft_agents.activity import Activity, ActivityTypes, Attachment

CARDS_DIR = Path(__file__).resolve().parent.parent / "templates" / "cards"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_TEXT = 300  # characters of any one directory-sourced value shown on a card


def _json_literal(value: object) -> str:
    """Every `{{ }}` hole becomes one JSON value: strings quoted and escaped, None -> null."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def clip(value: object, limit: int = MAX_TEXT) -> str:
    """A value as single-spaced text of at most `limit` characters (an ellipsis marks a cut)."""
    text = " ".join(str(value if value is not None else "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(text: object, *, weight: str | None = None, size: str | None = None, color: str | None = None,
          subtle: bool = False, monospace: bool = False, limit: int = MAX_TEXT) -> dict[str, Any]:
    """A RichTextBlock with one TextRun: shown as typed, never read as markdown (for untrusted text)."""
    run: dict[str, Any] = {"type": "TextRun", "text": clip(text, limit)}
    for key, value in (("weight", weight), ("size", size), ("color", color)):
        if value:
            run[key] = value
    if subtle:
        run["isSubtle"] = True
    if monospace:
        run["fontType"] = "Monospace"
    return {"type": "RichTextBlock", "inlines": [run]}


# Status lines that meet WCAG AA (4.5:1) in every Teams theme, and never colour alone. Teams' host configs
# (tests/bot/test_cards.py holds them and checks every card in each) draw Good #92C353 (2.07:1 on the light
# theme's white) and Warning #F8D22A (1.47:1), and on the dark theme's #2D2C2C Attention #D74654 (3.24:1): each fails
# in some theme, so none is used. Default is each theme's own text colour (#252424 on white, 15.5:1; white on dark,
# 13.9:1; the contrast theme's white on black, 21:1). So a status is bold text in the theme's own colour, and its
# words ("Verified", "Not verified", "Stop: ...", "Sign-in risk: medium") carry the meaning on their own.
TONES: dict[str, str] = {
    "good": "Default",
    "warning": "Default",
    "attention": "Default",
    "default": "Default",
    "accent": "Accent",  # #6264A7 on white 5.4:1, #A6A7DC on dark 6.1:1: neutral emphasis, never a status
}
FAILING_COLORS = frozenset({"Good", "Warning", "Attention"})  # never on a card: see TONES


def status(text: object, tone: str | None, *, size: str | None = None, limit: int = MAX_TEXT) -> dict[str, Any]:
    """A bold status line (RichTextBlock, never markdown) for a tone: "good", "warning", "attention" or None/
    "default" (case-insensitive, so the wording's "Good"/"Warning"/"Attention" names work), in a colour that
    passes contrast; the words, which must say the status themselves, unchanged."""
    color = TONES.get((tone or "default").lower(), "Default")
    return plain(text, weight="Bolder", size=size, color=None if color == "Default" else color, limit=limit)


def button(title: str, verb: str, data: Mapping[str, Any] | None = None, *, style: str | None = None,
           inputs: bool = True) -> dict[str, Any]:
    """Action.Execute with an Action.Submit fallback; both carry {"verb": verb, **data}. `inputs=False` sends
    no input values (Cancel, "Caller doesn't know"), so the client skips input validation."""
    payload = {"verb": verb, **(data or {})}
    submit: dict[str, Any] = {"type": "Action.Submit", "title": title, "data": payload}
    execute: dict[str, Any] = {"type": "Action.Execute", "title": title, "verb": verb, "data": payload}
    for action in (submit, execute):
        if style:
            action["style"] = style
        if not inputs:
            action["associatedInputs"] = "none"
    execute["fallback"] = submit
    return execute


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(CARDS_DIR)),
        autoescape=False,  # noqa: S701 - JSON, not HTML: `finalize` JSON-encodes every hole
        finalize=_json_literal,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,  # the templates ship with the code: no stat() of the file on every card
    )
    env.filters["clip"] = clip
    env.globals.update(plain=plain, button=button, status=status)
    return env


def render(name: str, **values: Any) -> dict[str, Any]:
    """Render templates/cards/<name>.json.j2 to the card's JSON object. Raises if the result is not JSON."""
    text = environment().get_template(f"{name}.json.j2").render(**values)
    try:
        card = json.loads(text)
    except json.JSONDecodeError as err:  # a template bug, never data: data is always JSON-encoded
        raise ValueError(f"card template {name!r} rendered invalid JSON: {err.msg} at line {err.lineno}") from None
    return card


def attachment(card: Mapping[str, Any]) -> Attachment:
    return Attachment(content_type=CARD_CONTENT_TYPE, content=dict(card))


def card_activity(card: Mapping[str, Any], summary: str) -> Activity:
    """A message carrying one card; `summary` is what notifications and clients without cards show."""
    return Activity(type=ActivityTypes.message, attachments=[attachment(card)], summary=clip(summary, 200))


def card_of(activity: Activity) -> dict[str, Any] | None:
    """The first Adaptive Card an activity carries (for tests and card updates), else None."""
    for item in activity.attachments or []:
        if item.content_type == CARD_CONTENT_TYPE and isinstance(item.content, dict):
            return item.content
    return None


def card_text(card: Mapping[str, Any] | None) -> str:
    """All visible text of a card, one line per text element (for logs-free assertions and fallbacks)."""
    lines: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, Mapping):
            kind = node.get("type")
            if kind in ("TextBlock", "TextRun") and isinstance(node.get("text"), str):
                lines.append(node["text"])
            elif kind in ("Action.Execute", "Action.Submit") and isinstance(node.get("title"), str):
                lines.append(f"[{node['title']}]")
            for key, child in node.items():
                if key != "fallback":
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(card)
    return "\n".join(lines)


class Cards:
    """The card functions as an object, for constructor injection (dialogs' `CardRenderer`)."""

    def render(self, name: str, **values: Any) -> dict[str, Any]:
        return render(name, **values)

    def activity(self, card: Mapping[str, Any], summary: str) -> Activity:
        return card_activity(card, summary)
