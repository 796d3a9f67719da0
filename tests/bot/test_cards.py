"""Every card is Adaptive Card 1.5 that Teams renders, whatever names the directory holds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.cards import CARDS_DIR, FAILING_COLORS, button, card_of, card_text, plain, render, status
from tests.bot.schemas import assert_valid_card
from tests.dialogs.fakes import ALAN, MARGARET, PEOPLE, FakeDirectory
from tests.dialogs.harness import answer_until_decided, open_teams
from tests.store.support import FakeClock, sqlite_copy

HOSTILE = [
    'Robert"); DROP TABLE users;-- "quoted" \\backslash\\',
    "{{ 7*7 }} {% raw %} }} {\"injected\": true}, ]",
    "**Bold** _it_ [Click me](https://evil.example/reset) ![x](https://evil.example/p.png) <b>html</b>",
    "Ş" + "ö" * 400 + " — a very long name indeed " * 20,
    "王秀英 · Мария Иванова · محمد عبدالله · Ñandú 🦜",
    "line\nbreak\ttab\u202eRTL-override\x00nul",
]

ALL_CARDS = {
    "notice": lambda h: dict(title="Title", lines=[h, "second"], tone="Attention"),
    "help": lambda h: dict(audience="agent", short=False, self_service=False),
    "people_choice": lambda h: dict(query=h, ref="r", people=[{"name": h, "details": h},
                                                                        {"name": "B", "details": ""}]),
    "person": lambda h: dict(person={"name": h, "details": h}, risk={"level": "medium", "color": "Warning",
                                                                  "lines": [h]}, requirements=[h]),
    "question": lambda h: dict(heading="Question 1 of at most 6", progress="▰▱▱▱▱▱", note=None, text=h,
                               options=[h, "Grace Hopper"], data={"ref": "r", "question": "q"},
                               labels={"label": "L", "placeholder": "P", "hint": "H", "skip": "S"}),
    "decision": lambda h: dict(title="Verified", color="Good", person_name=h, reason=h, next_steps=[h], summary=h,
                               factors=[h], can_reset=True, data={"ref": h}),
    "reset_confirm": lambda h: dict(person_name=h, data={"ref": "r"}),
    "password": lambda h: dict(person_name=h, redacted=False, password="Ab#*_[x](y)", not_told=True,
                               data={"ref": "r"}),
    "out_of_band": lambda h: dict(started_at="12:00 UTC", agent_name=h, code="482 913", data={"session": "s"}),
    "manager": lambda h: dict(person_name=h, question=h, context_line=h, data={"session": "s"}),
    "code_entry": lambda h: dict(note=h, data={"ref": "r"}),
    "waiting": lambda h: dict(title="Waiting", lines=[h], data={"ref": "r"}),
    "busy": lambda h: dict(person_name=h, agent=True),
}


def test_every_template_has_a_test() -> None:
    assert {p.name.removesuffix(".json.j2") for p in Path(CARDS_DIR).glob("*.json.j2")} == set(ALL_CARDS)


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("name", sorted(ALL_CARDS))
def test_cards_are_valid_adaptive_cards_with_hostile_text(name: str, hostile: str) -> None:
    card = render(name, **ALL_CARDS[name](hostile))
    assert_valid_card(card)


def test_directory_text_is_shown_verbatim_never_as_markdown() -> None:
    hostile = HOSTILE[2]
    card = render("person", person={"name": hostile, "details": ""}, risk={"level": "low", "color": "Default",
                                                                           "lines": []}, requirements=[])
    [run] = [b["inlines"][0] for b in card["body"] if b["type"] == "RichTextBlock" and hostile in
             b["inlines"][0]["text"]]
    assert run["type"] == "TextRun" and run["text"] == hostile  # TextRun: Adaptive Cards never parse markdown


def test_long_values_are_clipped() -> None:
    block = plain("x" * 1000)
    assert len(block["inlines"][0]["text"]) == 300 and block["inlines"][0]["text"].endswith("…")


def test_buttons_are_execute_with_a_submit_fallback_carrying_the_same_data() -> None:
    action = button("Go", "verb", {"ref": "r"}, inputs=False)
    assert action["type"] == "Action.Execute" and action["verb"] == "verb"
    assert action["fallback"]["type"] == "Action.Submit" and action["fallback"]["data"] == action["data"]
    assert action["data"] == {"verb": "verb", "ref": "r"} and action["associatedInputs"] == "none"


def test_password_card_redacted_has_no_password() -> None:
    card = render("password", person_name="Alan", redacted=True, redacted_at="12:01 UTC", data={})
    assert_valid_card(card)
    assert "Ab#" not in card_text(card) and "••••••••" in card_text(card) and "actions" not in card


def test_password_card_shows_the_password_in_the_groups_the_agent_reads_out() -> None:
    card = render("password", person_name="Alan", redacted=False, password="Kq7m-xR4t-9wPe-hN3c", data={"ref": "r"})
    assert_valid_card(card)
    [groups] = [b for b in card["body"] if b["type"] == "ColumnSet"]
    shown = [column["items"][1]["inlines"][0]["text"] for column in groups["columns"]]
    assert shown == ["Kq7m", "xR4t", "9wPe", "hN3c"]
    assert "Kq7m-xR4t-9wPe-hN3c" in card_text(card) and "hyphens" in card_text(card)


def test_password_card_says_what_to_do_when_the_first_sign_in_fails() -> None:
    # A new password takes a while to reach every Microsoft service (replication): a failed first sign-in is
    # usually that, not a wrong password, and resetting again only restarts the wait.
    card = render("password", person_name="Alan", redacted=False, password="Kq7m-xR4t-9wPe-hN3c", data={"ref": "r"})
    assert_valid_card(card)
    text = card_text(card)
    assert "If their first sign-in with it fails" in text and "try again" in text and "Don't reset it again" in text


async def test_a_whole_verification_with_a_hostile_name_sends_only_valid_cards(tmp_path, sqlite_template) -> None:
    hostile = replace(ALAN, display_name=HOSTILE[0] + HOSTILE[2], job_title=HOSTILE[1], department=HOSTILE[4])
    clock = FakeClock()
    directory = FakeDirectory(clock)
    directory.context_of = lambda p: replace(FakeDirectory.context_of(directory, ALAN), profile=hostile)
    import tests.dialogs.fakes as fakes

    original = fakes.PEOPLE
    fakes.PEOPLE = (hostile, *PEOPLE[1:])
    try:
        async with open_teams(sqlite_copy(sqlite_template, tmp_path), clock, directory=directory) as teams:
            agent = teams.chat(MARGARET)
            await agent.say("verify robert")
            await answer_until_decided(teams, agent, hostile)
            await agent.click("Reset password")
            await agent.click("Yes, reset it")
            await agent.click("I've passed it on")
            cards = [card_of(a) for a in teams.outbox.sent + teams.outbox.updates if card_of(a) is not None]
    finally:
        fakes.PEOPLE = original
    assert len(cards) >= 8
    for card in cards:
        assert_valid_card(card)
    assert any(hostile.display_name[:100] in card_text(c) for c in cards)


# The foreground colours a card may name, on the card's background, in each Teams theme, as Teams' Adaptive Card host
# configs give them (default container):
# - default (light): the host config the Agents Playground ships (it renders cards with Teams' light theme);
# - dark: microsoft/AdaptiveCards samples/HostConfig/microsoft-teams-dark.json (the designer's Teams dark host);
# - contrast: no host config is published; Teams' contrast theme is Fluent's (black, white text, yellow links, cyan
#   selection, green disabled), and its renderer draws every foreground in that palette, so a colour name only
#   picks which of those: the theme's text for Default, and the worst of the rest for every other name.
TEAMS_THEMES: dict[str, tuple[str, dict[str, str]]] = {
    "default": ("#FFFFFF", {"Default": "#252424", "Accent": "#6264A7", "Good": "#92C353", "Warning": "#F8D22A",
                            "Attention": "#C4314B"}),
    "dark": ("#2D2C2C", {"Default": "#FFFFFF", "Accent": "#A6A7DC", "Good": "#92C353", "Warning": "#F8D22A",
                         "Attention": "#D74654"}),
    "contrast": ("#000000", {"Default": "#FFFFFF", "Accent": "#3FF23F", "Good": "#3FF23F", "Warning": "#3FF23F",
                             "Attention": "#3FF23F"}),
}
TEAMS_LIGHT_BACKGROUND, TEAMS_LIGHT_FOREGROUND = TEAMS_THEMES["default"]


def _contrast(a: str, b: str) -> float:
    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _colours(node: object) -> list[str]:
    """Every foreground colour a card names (a text without one is drawn in the theme's Default)."""
    if isinstance(node, dict):
        found = [node["color"]] if isinstance(node.get("color"), str) else []
        if node.get("type") in ("TextBlock", "TextRun") and "color" not in node:
            found.append("Default")
        return found + [c for child in node.values() for c in _colours(child)]
    if isinstance(node, list):
        return [c for child in node for c in _colours(child)]
    return []


def test_the_teams_colours_the_issue_measured_are_the_ones_that_fail() -> None:
    assert round(_contrast(TEAMS_LIGHT_FOREGROUND["Good"], TEAMS_LIGHT_BACKGROUND), 2) == 2.07
    assert round(_contrast(TEAMS_LIGHT_FOREGROUND["Warning"], TEAMS_LIGHT_BACKGROUND), 2) == 1.47
    dark_background, dark = TEAMS_THEMES["dark"]
    assert round(_contrast(dark["Attention"], dark_background), 2) == 3.24  # Attention fails on dark


@pytest.mark.parametrize("theme", sorted(TEAMS_THEMES))
@pytest.mark.parametrize("tone", ["Good", "good", "Warning", "Attention", "Default", None])
def test_status_text_meets_wcag_aa_whatever_the_tone_in_every_teams_theme(theme: str, tone: str | None) -> None:
    background, foreground = TEAMS_THEMES[theme]
    cards = [render("notice", title="Your password was reset", lines=["x"], tone=tone),
             render("decision", **{**ALL_CARDS["decision"]("Alan"), "color": tone}),
             render("person", **ALL_CARDS["person"]("Alan") | {"risk": {"level": "low", "color": tone, "lines": []}}),
             render("password", **ALL_CARDS["password"]("Alan") | {"not_told": True})]
    for card in cards:
        for colour in _colours(card):
            assert colour not in FAILING_COLORS
            ratio = _contrast(foreground[colour], background)
            assert ratio >= 4.5, f"{colour} in Teams' {theme} theme: {ratio:.2f}:1"


@pytest.mark.parametrize("name", sorted(p.name.removesuffix(".json.j2") for p in CARDS_DIR.glob("*.json.j2")))
def test_every_cards_text_meets_wcag_aa_in_every_teams_theme(name: str) -> None:
    card = render(name, **ALL_CARDS[name]("Alan"))
    for theme, (background, foreground) in TEAMS_THEMES.items():
        for colour in _colours(card):
            ratio = _contrast(foreground[colour], background)
            assert ratio >= 4.5, f"{name}: {colour} in Teams' {theme} theme: {ratio:.2f}:1"


def test_a_status_is_bold_words_not_colour_alone() -> None:
    block = status("Verified", "Good", size="Large")
    [run] = block["inlines"]
    assert run["text"] == "Verified" and run["weight"] == "Bolder" and "color" not in run  # the theme's own text
    [stop] = status("Stop: wrong code", "Attention")["inlines"]
    assert stop["text"] == "Stop: wrong code" and stop["weight"] == "Bolder" and "color" not in stop


@pytest.mark.parametrize("audience", ["agent", "user"])
def test_help_card_placeholders_survive_teams_markdown_and_html(audience: str) -> None:
    text = card_text(render("help", audience=audience, short=False, self_service=True))
    assert "<" not in text and ">" not in text  # Teams drops <name or email> as an unknown HTML tag
    if audience == "agent":
        assert "**verify** *name or email*, **cancel**, **help**" in text


def test_the_answer_box_submits_on_enter_with_the_cards_own_answer_action() -> None:
    card = render("question", **ALL_CARDS["question"]("q") | {"options": []})
    [box] = [e for e in card["body"] if e.get("type") == "Input.Text"]
    assert box["inlineAction"]["verb"] == "answer" and box["inlineAction"]["data"]["ref"] == "r"
    assert box["inlineAction"]["fallback"]["type"] == "Action.Submit"
    assert_valid_card(card)


def test_the_person_picker_shows_each_whole_identity_wrapped_and_a_short_button() -> None:
    long_title = "Principal Research Scientist, Cryptanalysis and Early Computing Programme (Hut 8)"
    people = [{"name": "Alan Turing", "details": f"{long_title} · Computing · alan@contoso.example"},
              {"name": "Alan Turner", "details": "Accountant · Finance · aturner@contoso.example"}]
    card = render("people_choice", query="alan", ref="r", people=people)
    [choices] = [e for e in card["body"] if e.get("type") == "Input.ChoiceSet"]
    assert choices["wrap"] is True and choices["style"] == "expanded" and choices["isRequired"] is True
    assert [c["title"] for c in choices["choices"]] == [
        f"Alan Turing — {long_title} · Computing · alan@contoso.example",
        "Alan Turner — Accountant · Finance · aturner@contoso.example"]  # whole, never clipped to a button's width
    assert [c["value"] for c in choices["choices"]] == ["0", "1"]
    buttons = [line for line in card_text(card).splitlines() if line.startswith("[")]
    assert buttons == ["[Choose this person]", "[None of these]"]
    assert_valid_card(card)
