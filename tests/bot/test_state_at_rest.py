"""What the bot keeps between turns: the dialog stack as JSON, and the accepted answers only encrypted."""

from __future__ import annotations

import json

import pytest
from microsoft_agents.activity import Activity, ActivityTypes, Attachment
from microsoft_agents.hosting.dialogs import DialogInstance, DialogState, PromptOptions

from bot.dialog_state import decode, encode
from bot.sealing import FernetSealer
from dialogs.ports import SealError
from tests.dialogs.fakes import alan_context
from tests.verification import builders as b
from verification import Policy, VerificationSession, assess_risk
from verification.plan import decode_plan, encode_plan


def started_session() -> VerificationSession:
    context = alan_context(b.NOW)
    session = VerificationSession(lambda: b.NOW)
    session.start(context, b.org(), Policy(), assess_risk(context, Policy()), 0)
    return session


def test_dialog_stack_round_trips_through_plain_json() -> None:
    prompt = Activity(type=ActivityTypes.message, text="card", attachments=[
        Attachment(content_type="application/vnd.microsoft.card.adaptive", content={"type": "AdaptiveCard"})])
    inner = DialogState([DialogInstance("Prompt", {"options": PromptOptions(prompt=prompt, retry_prompt=prompt,
                                                                            validations={"verbs": ["a"]}),
                                                   "state": {"AttemptCount": 1}})])
    stack = DialogState([DialogInstance("VerifyDialog", {"dialogs": inner, "values": {"n": [1, 2.5, None, True]}})])
    stored = json.loads(json.dumps(encode(stack)))  # what the database holds
    back = decode(stored)
    assert isinstance(back, DialogState) and isinstance(back.dialog_stack[0].state["dialogs"], DialogState)
    options = back.dialog_stack[0].state["dialogs"].dialog_stack[0].state["options"]
    assert isinstance(options, PromptOptions) and options.prompt.attachments[0].content == {"type": "AdaptiveCard"}
    assert options.validations == {"verbs": ["a"]}
    assert encode(back) == stored


def test_anything_else_is_refused_rather_than_stored_half_way() -> None:
    with pytest.raises(TypeError, match="cannot keep a object"):
        encode(DialogState([DialogInstance("x", {"values": {"bad": object()}})]))


def test_sealed_session_shows_no_accepted_answer_and_opens_again() -> None:
    session = started_session()
    plan = encode_plan(session.plan())
    answers = {c.display for q in session.plan() for c in q.accepted}
    assert answers
    sealer = FernetSealer(FernetSealer.generate_key())
    sealed, token = sealer.seal(session.to_dict()), sealer.encrypt(plan)
    text = json.dumps(sealed) + token
    assert not any(a in text for a in answers)
    assert sealer.unseal(sealed) == json.loads(json.dumps(session.to_dict()))
    opened = decode_plan(sealer.decrypt(token))
    resumed = VerificationSession.from_dict(sealer.unseal(sealed), lambda: b.NOW, opened)
    assert resumed.check().prompt == session.check().prompt


def test_a_sealed_plan_cannot_be_opened_with_another_key_or_after_tampering() -> None:
    key = FernetSealer.generate_key()
    token = FernetSealer(key).encrypt(b"[]")
    with pytest.raises(SealError):
        FernetSealer(FernetSealer.generate_key()).decrypt(token)
    with pytest.raises(SealError):
        FernetSealer(key).decrypt(token[:-8] + ("A" if token[-8] != "A" else "B") + token[-7:])


def test_sealed_session_cannot_be_opened_with_another_key_or_after_tampering() -> None:
    sealed = FernetSealer(FernetSealer.generate_key()).seal(started_session().to_dict())
    with pytest.raises(SealError):
        FernetSealer(FernetSealer.generate_key()).unseal(sealed)
    key = FernetSealer.generate_key()
    sealed = FernetSealer(key).seal(started_session().to_dict())
    token = sealed["secret"]
    sealed["secret"] = token[:-8] + ("A" if token[-8] != "A" else "B") + token[-7:]
    with pytest.raises(SealError):
        FernetSealer(key).unseal(sealed)
