"""The password reset's rules, as types: what a reset attempt can end as, what a request to reset meets, and
the times that bound it. The store keeps one reset record per verified session (store/sessions.py); the dialog
acts on these types, never on the wording of an error.

A reset is written ahead: its intent is recorded (claimed, audited `password_reset/started`) before Microsoft
Graph is asked, and its outcome after. An attempt whose outcome is not known (the request timed out or the
connection dropped after it was sent, the process was killed between the two records, the password card never
reached the agent) leaves the password possibly changed and unknown to anyone: the same verified session may
then reset again, with a new password, while its window lasts. A claim that is never settled (a kill) expires
after `CLAIM_EXPIRY`, so nothing is left "being reset already" for good (sooner, after `DEAD_OWNER_TAKEOVER`, when
the claiming process's heartbeat says it is dead); the sweep (bot/hosting.py) then records it
unknown and tells the person a reset may have gone through, once across instances, so they hear of it even if the
agent never resets again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

# How long an unsettled claim blocks another attempt: longer than any reset can take (Graph's own budget and a
# few retries of the card), short enough that an agent whose turn was killed can try again while on the call.
CLAIM_EXPIRY = timedelta(minutes=3)
# A claim whose process is dead (its heartbeat lapsed: store/turns.py) is taken over this long after its fence,
# not after CLAIM_EXPIRY. The fence (a compare-and-set on the claim, just before Graph's PATCH) is where a process
# last proved the claim still its own; it then sends the PATCH within FENCE_GRACE or not at all, and gives the PATCH
# (retries included) at most 15 s (graph/graph_directory.py CALL_TIMEOUT_S). So a process taken for dead that was
# only stalled cannot start a PATCH after a take-over, nor have one still landing after the new owner's: 2 + 15 s,
# with margin for the clocks of two hosts.
DEAD_OWNER_TAKEOVER = timedelta(seconds=30)
FENCE_GRACE = timedelta(seconds=2)
# How long after the decision a verified session may reset (and reset again after an unknown outcome).
RESET_WINDOW = timedelta(minutes=15)


class ResetOutcome(StrEnum):
    DONE = "done"  # Entra took the new password (and the agent was shown it)
    FAILED = "failed"  # certainly nothing changed: refused, or never sent
    UNKNOWN = "unknown"  # the password may have changed, and nobody has it: reset again for a new one


class ResetClaim(StrEnum):
    """What a request to reset met (the compare-and-set on the session's reset record)."""

    CLAIMED = "claimed"  # this request may reset now
    DONE = "done"  # already reset, and the password was shown
    BUSY = "busy"  # another request is resetting right now (or was killed: it expires after CLAIM_EXPIRY)
    BLOCKED = "blocked"  # the person said "not me", or Entra refused the reset for good
    EXPIRED = "expired"  # the verification is too old to reset from: verify again
    NOT_ALLOWED = "not_allowed"  # no verified session of this agent allows it


class Settled(StrEnum):
    """What became of an attempt's outcome when it was recorded."""

    RECORDED = "recorded"  # the record is this attempt's, and now says how it ended
    SUPERSEDED = "superseded"  # another attempt took the claim over (this one's process was taken for dead)
    UNRECORDED = "unrecorded"  # the database did not take it


class ResetClaimLost(Exception):
    """The attempt may not send its PATCH: its claim was taken over, or proving it its own took longer than
    FENCE_GRACE. Nothing was changed."""


# The reset record's states, as stored with the session.
RESETTING = "resetting"
BLOCKED = "blocked"
RETRYABLE = (ResetOutcome.FAILED.value, ResetOutcome.UNKNOWN.value)


@dataclass(frozen=True, slots=True)
class ResetClaimResult:
    """What a request to reset met. `attempt` is the attempt this request now owns (CLAIMED) or the latest one;
    `at` is when the password was reset (DONE) or when a claim in progress expires (BUSY); `target_id` is whose
    password the verified session allows resetting (from the store, never from the card that asked)."""

    claim: ResetClaim
    attempt: int
    at: datetime | None = None
    target_id: str | None = None
