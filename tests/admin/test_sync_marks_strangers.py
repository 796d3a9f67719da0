"""The directory sync marks guests and disabled accounts as never to be reset, with the reason."""

from __future__ import annotations

from admin.sync import _Verdicts
from graph.directory import DirectoryUser


def test_guests_and_disabled_accounts_are_marked_not_resettable() -> None:
    verdicts = _Verdicts(not_resettable={}, include=None, exclude=frozenset())
    guest = DirectoryUser("g1", "Carol Elliott (Guest)", "carol_litware.example#EXT#@contoso.onmicrosoft.com",
                          user_type="Guest")
    gone = DirectoryUser("d1", "Sally Smith", "sally.smith@contoso.example", account_enabled=False)
    member = DirectoryUser("m1", "Alan Turing", "alan@contoso.example")
    assert verdicts.snapshot(guest).not_resettable_reasons == ("guest",)
    assert verdicts.snapshot(gone).not_resettable_reasons == ("account_disabled",)
    assert verdicts.snapshot(member).not_resettable_reasons == ()
    # a recheck keeps what only the user's own record says
    assert verdicts.reasons("g1", federated=False, guest=True) == ("guest",)
