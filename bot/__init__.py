"""The Teams bot's Agents SDK glue: hosting, who is who, cards, and what the dialogs need from the world.

    hosting.py      POST /api/messages: Bot Framework JWT (anonymous only in demo mode), body checks (400),
                    CloudAdapter + AgentApplication[TurnState] over store.conversation_state; setup_bot(app)
    connector_clients.py  the SDK's per-turn channel clients over one shared, bounded pool, with timeouts
    agent.py        the one route: tenant gate, conversation references, commands, dialogs, card replacement
    access.py       connected tenants, helpdesk agents (membership of the helpdesk group, cached 2 minutes)
    cards.py        templates/cards/*.json.j2 -> Adaptive Cards 1.5 (every hole JSON-encoded)
    dialog_state.py the SDK's dialog stack as plain JSON in conversation state
    sealing.py      Fernet for a verification's accepted answers while they sit in state (WATCHWORD_STATE_KEY)
    records.py      sessions, transcript, attempts, lockouts, audit, policy (dialogs' VerificationRecords)
    ledger.py       the reset ledger over the store (the session row guards a reset); out-of-band answers
    proactive.py    "is that you on the call?", "your password was reset", telling the agent
    turn_errors.py  the turn-error handler: log with a reference, neutral message, clear the state

The conversations themselves are in dialogs/; the rules in verification/.
"""
