"""Encrypting a verification's accepted answers while they are stored.

A session's question plan (accepted answers included) is sealed once, whole, with `encrypt` and kept in the
store; its per-turn progress (`VerificationSession.to_dict()`) keeps what must stay private (keys already
credited, a half-given name) under "secret" until the session decides. `seal` keeps the open part readable
and replaces "secret" with a Fernet token (AES-128-CBC + HMAC-SHA256), so the database, a backup or a state
dump never shows an answer, and tampering is detected rather than believed.

The key is WATCHWORD_STATE_KEY. Without one (demo mode, tests) a random key is made per process: a
verification in progress then cannot be resumed after a restart, and several instances cannot share
conversations; the bot logs that loudly at start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from dialogs.ports import SealError

FORMAT = 1


class FernetSealer:
    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)
        # A separate key for stable multiple-choice draws, derived so that it reveals nothing of the state key.
        self._choice = hmac.new(base64.urlsafe_b64decode(key), b"watchword: multiple-choice draws", hashlib.sha256
                                ).digest()

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode("ascii")

    def seal(self, session: Mapping[str, Any]) -> dict[str, Any]:
        open_part = {k: v for k, v in session.items() if k != "secret"}
        secret = session.get("secret") or {}
        token = self._fernet.encrypt(json.dumps(secret, separators=(",", ":")).encode("utf-8")).decode("ascii")
        return {"sealed": FORMAT, "open": open_part, "secret": token if secret else ""}

    def encrypt(self, data: bytes) -> str:
        return self._fernet.encrypt(data).decode("ascii")

    def choice_key(self, tenant_id: str) -> bytes:
        return hmac.new(self._choice, tenant_id.lower().encode("ascii"), hashlib.sha256).digest()

    def decrypt(self, token: str) -> bytes:
        try:
            return self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, ValueError):
            raise SealError("sealed data cannot be opened with this key") from None

    def unseal(self, sealed: Mapping[str, Any]) -> dict[str, Any]:
        if sealed.get("sealed") != FORMAT or not isinstance(sealed.get("open"), dict):
            raise SealError("not a sealed verification")
        token = sealed.get("secret") or ""
        secret: dict[str, Any] = {}
        if token:
            try:
                secret = json.loads(self._fernet.decrypt(str(token).encode("ascii")))
            except (InvalidToken, ValueError):
                raise SealError("the verification's sealed state cannot be opened with this key") from None
        return {**sealed["open"], "secret": secret}
