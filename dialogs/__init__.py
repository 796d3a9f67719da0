"""Conversations, one ComponentDialog per file, talking to the world only through dialogs/ports.py.

    verify_dialog.py        `verify <name>`: search, choose, refuse or start, questions, decision, reset offer
    question_dialog.py      one question at a time until the verification session decides
    reset_dialog.py         confirm, reset once, show the password once, take it off the chat
    self_service_dialog.py  `reset my password` for the person themselves (off unless the tenant enables it)
    card_prompt.py          the prompt that takes a card button (Execute or Submit) or typed text
    wording.py              what the cards say about risk, the policy and each outcome
"""
