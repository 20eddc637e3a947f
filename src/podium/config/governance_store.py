"""Rate limits and budgets set at run time, kept in ``<config dir>/governance.json``.

They survive restarts and reach the other replicas sharing the directory: each replica checks the
file's signature on its watch interval and reloads it when someone else wrote it. Budget webhook
URLs can carry credentials in their path, so they are stored encrypted like provider secrets.

Layout::

    {"limits": [{"scope": "tenant", "target": "acme", "limits": {"requests_per_minute": 600}}],
     "budgets": [{"tenant": "acme", "key_id": null, "budget": {"daily": 50.0, ...,
                  "alert_webhook": "enc:v1:..."}}]}
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from podium.config.crypto import Cipher, is_encrypted
from podium.config.store import load_json, stat_signature, write_atomic
from podium.errors import ConfigError

FILE = "governance.json"
_SECRET_FIELDS = ("alert_webhook",)


class GovernanceStore:
    """Reads and writes ``governance.json``; knows whether it changed since it last looked.

    Args:
        directory: The configuration directory.
        cipher: Encrypts the secret fields.
    """

    def __init__(self, directory: Path, cipher: Cipher) -> None:
        self.path = directory / FILE
        self._cipher = cipher
        self._seen: tuple[tuple[int, int, int], str] | None = None

    def changed(self) -> bool:
        """Whether the file differs from what this store last read or wrote."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return self._seen is not None
        if self._seen is not None and self._seen[0] == stat_signature(st):
            return False
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        return self._seen is None or digest != self._seen[1]

    def load(self) -> dict[str, list[dict[str, Any]]]:
        """The stored limits and budgets (secrets decrypted); empty lists when there is no file.

        Raises:
            ConfigError: the file is malformed or a secret does not decrypt (wrong key); nothing is
                changed on disk.
        """
        try:
            st = self.path.stat()
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self._seen = None
            return {"limits": [], "budgets": []}
        doc = load_json(raw, FILE)
        limits, budgets = doc.get("limits", []), doc.get("budgets", [])
        if not isinstance(limits, list) or not isinstance(budgets, list):
            raise ConfigError(f"{self.path}: 'limits' and 'budgets' must be lists")
        for entry in budgets:
            budget = entry.get("budget", {}) if isinstance(entry, dict) else None
            if not isinstance(budget, dict):
                raise ConfigError(f"{self.path}: each budget needs a 'budget' object")
            for key in _SECRET_FIELDS:
                value = budget.get(key)
                if isinstance(value, str) and is_encrypted(value):
                    budget[key] = self._cipher.decrypt(value, what=f"{FILE} budgets[].budget.{key}")
        self._seen = (stat_signature(st), hashlib.sha256(raw).hexdigest())
        return {"limits": limits, "budgets": budgets}

    def save(self, limits: list[dict[str, Any]], budgets: list[dict[str, Any]]) -> None:
        """Replace the file's contents (atomically, mode 0600), secrets encrypted."""
        sealed = []
        for entry in budgets:
            budget = dict(entry["budget"])
            for key in _SECRET_FIELDS:
                if budget.get(key):
                    budget[key] = self._cipher.encrypt(str(budget[key]))
            sealed.append({**entry, "budget": budget})
        data = json.dumps({"limits": limits, "budgets": sealed}, indent=2, sort_keys=True).encode()
        os.makedirs(self.path.parent, exist_ok=True)
        st = write_atomic(self.path, data)
        self._seen = (stat_signature(st), hashlib.sha256(data).hexdigest())
