"""The configuration directory: providers per tenant, secrets encrypted, changes detected.

Layout (the seed's ``config/`` directory)::

    config/
    ├── defaults.json          default provider settings
    ├── tenant-default.json    providers of tenant "default"
    ├── tenant-myapp.json      providers of tenant "myapp"
    └── templates.json         templates registered at run time

A tenant file reads ``{"version": 1, "providers": {"<name>": {"type": "openai", "settings": {...},
"secrets": {"api_key": "enc:v1:..."}}}}``. Secrets are plaintext only in memory (``ProviderRecord``);
every write encrypts them, and a secret typed into a file by hand in clear is encrypted in place as soon
as podium reads the file. Writes are atomic (temporary file, fsync, rename), files are mode 0600, and
read-modify-write cycles hold an exclusive lock on the directory, so replicas sharing it do not lose
each other's changes.

The store remembers what it last read or wrote. ``poll`` re-reads files whose content changed and
returns the differences as ``ConfigCreated``/``ConfigUpdated``/``ConfigRemoved`` events; the store's own
writes are recognised by their digest and never reported as external changes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import secrets as _random
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podium.config.crypto import Cipher, is_encrypted, is_secret_key, mask_secret
from podium.errors import ConfigError, RequestError
from podium.events import ConfigCreated, ConfigEvent, ConfigRemoved, ConfigSource, ConfigUpdated

logger = logging.getLogger(__name__)

TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PROVIDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_VERSION = 1
_ENTRY_KEYS = frozenset({"type", "settings", "secrets"})
# A file modified this recently may change again within the same mtime tick: compare its content.
_RACY_SECONDS = 2.0

if sys.platform == "win32":

    def _lock_fd(fd: int) -> None:
        """No cross-process lock on Windows: run one podium process per configuration directory."""

else:
    import fcntl

    def _lock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def check_tenant(tenant: str) -> str:
    """Return ``tenant`` if it can name a tenant file, else raise ``RequestError``."""
    if not TENANT_NAME.fullmatch(tenant):
        raise RequestError(
            f"invalid tenant name {tenant!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            param="tenant",
        )
    return tenant


@dataclass(frozen=True, repr=False)
class ProviderRecord:
    """One provider as stored: plain settings, and secrets (plaintext here, encrypted on disk).

    Attributes:
        tenant: The tenant that owns the provider.
        name: The provider's name, unique within the tenant.
        type: The provider type (``openai``, ``custom``, ...).
        settings: Everything that is not a secret, as ``create_provider`` takes it.
        secrets: Secret values by key (``api_key``, ``header:Authorization``, ...).
    """

    tenant: str
    name: str
    type: str
    settings: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    def masked(self) -> dict[str, Any]:
        """The record as shown to hooks and callers: secrets masked."""
        return {
            "type": self.type,
            "settings": copy.deepcopy(self.settings),
            "secrets": {k: mask_secret(v) for k, v in self.secrets.items()},
        }

    def __repr__(self) -> str:
        shown = {k: mask_secret(v) for k, v in self.secrets.items()}
        return (
            f"ProviderRecord(tenant={self.tenant!r}, name={self.name!r}, type={self.type!r}, "
            f"settings={self.settings!r}, secrets={shown!r})"
        )


Records = dict[str, dict[str, ProviderRecord]]


def diff(
    tenant: str,
    before: Mapping[str, ProviderRecord],
    after: Mapping[str, ProviderRecord],
    source: ConfigSource,
) -> list[ConfigEvent]:
    """The events that turn one tenant's ``before`` providers into ``after``, by provider name."""
    events: list[ConfigEvent] = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old is None and new is not None:
            events.append(ConfigCreated(tenant=tenant, provider=name, source=source, after=new.masked()))
        elif new is None and old is not None:
            events.append(ConfigRemoved(tenant=tenant, provider=name, source=source, before=old.masked()))
        elif old is not None and new is not None and old != new:
            events.append(
                ConfigUpdated(
                    tenant=tenant, provider=name, source=source, before=old.masked(), after=new.masked()
                )
            )
    return events


@dataclass(frozen=True)
class _Seen:
    """What the store last read or wrote in a file: its stat signature (taken before reading) and digest."""

    signature: tuple[int, int, int]
    digest: str
    # A file modified within _RACY_SECONDS of the moment its signature was taken may have changed again
    # within the same timestamp tick (coarse file systems, in-place editors): only its content can tell.
    trusted: bool

    @classmethod
    def of(cls, st: os.stat_result, data: bytes) -> _Seen:
        return cls(
            stat_signature(st), hashlib.sha256(data).hexdigest(), time.time() - st.st_mtime > _RACY_SECONDS
        )


def stat_signature(st: os.stat_result) -> tuple[int, int, int]:
    """What changes when a file is rewritten or edited: modification time, size, inode."""
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def write_atomic(path: Path, data: bytes) -> os.stat_result:
    """Replace ``path`` with ``data`` (mode 0600), returning the new file's stat.

    Readers see the old file or the new one, never half of it.
    """
    tmp = path.with_name(f".{path.name}.{_random.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            # Taken from our own descriptor: a stat of the path after the rename could already see
            # someone else's edit and hide it behind our digest.
            st = os.fstat(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sys.platform != "win32":
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return st


def load_json(raw: bytes, filename: str) -> dict[str, Any]:
    """A configuration file's JSON object; ``ConfigError`` naming the file when it is not one."""
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise ConfigError(f"{filename} is not valid JSON ({reason}{where}); fix or remove it") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{filename} must hold a JSON object")
    return doc


def _secret_paths(value: Any, path: str = "") -> list[str]:
    """Keys inside ``value`` (nested objects included) that name credentials."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, inner in value.items():
            where = f"{path}.{key}" if path else str(key)
            if is_secret_key(str(key)):
                found.append(where)
            found.extend(_secret_paths(inner, where))
    return found


class ConfigStore:
    """Reads and writes the encrypted configuration directory.

    Args:
        directory: The configuration directory (``AI_CONFIG_DIR``); created with mode 0700 if needed.
        cipher: Encrypts and decrypts secrets.
    """

    DEFAULTS = "defaults.json"
    TEMPLATES = "templates.json"

    def __init__(self, directory: Path, cipher: Cipher) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.directory = directory
        self.cipher = cipher
        self._lock_path = directory / ".lock"
        os.close(os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600))
        self._lock = threading.Lock()
        # Replaced, never mutated in place, so readers on other threads always see a consistent state.
        self._records: Records = {}
        self._seen: dict[str, _Seen] = {}
        self._broken: dict[str, str] = {}
        self._missing: set[str] = set()

    def tenant_file(self, tenant: str) -> Path:
        """Path of a tenant's file (the name is validated: no path tricks)."""
        return self.directory / f"tenant-{check_tenant(tenant)}.json"

    # ----------------------------------------------------------------- reading

    def load_all(self) -> Records:
        """Read every tenant file and return ``{tenant: {name: record}}``.

        Raises:
            ConfigError: a file is malformed or a secret cannot be decrypted (wrong key); every
                problem is listed and no file is changed.
        """
        with self._locked():
            parsed: dict[
                str, tuple[Path, os.stat_result, bytes, dict[str, Any], dict[str, ProviderRecord], int]
            ]
            parsed = {}
            errors: list[str] = []
            for tenant, path in self._tenant_files().items():
                st = path.stat()
                raw = path.read_bytes()
                try:
                    doc, records, plaintext = self._decode(raw, tenant, path.name)
                except ConfigError as exc:
                    errors.append(exc.message)
                    continue
                parsed[tenant] = (path, st, raw, doc, records, plaintext)
            if errors:
                raise ConfigError(
                    "cannot load the configuration in " + f"{self.directory}:\n- " + "\n- ".join(errors)
                )
            self._records = {tenant: entry[4] for tenant, entry in parsed.items() if entry[4]}
            self._seen, self._broken, self._missing = {}, {}, set()
            for path, st, raw, doc, _, plaintext in parsed.values():
                self._seen[path.name] = _Seen.of(st, raw)
                if plaintext:
                    self._seal(path, doc, plaintext)
            return self.records()

    def records(self) -> Records:
        """The providers as last read or written, ``{tenant: {name: record}}`` (a copy)."""
        return {tenant: dict(records) for tenant, records in self._records.items()}

    def get(self, tenant: str, name: str) -> ProviderRecord | None:
        """A provider's record as last read or written, or None."""
        return self._records.get(tenant, {}).get(name)

    def load_defaults(self) -> dict[str, Any]:
        """The content of ``defaults.json`` (an empty dict when there is none)."""
        path = self.directory / self.DEFAULTS
        return load_json(path.read_bytes(), path.name) if path.exists() else {}

    def load_templates(self) -> dict[str, dict[str, Any]]:
        """Templates saved in ``templates.json`` by name."""
        path = self.directory / self.TEMPLATES
        if not path.exists():
            return {}
        templates = load_json(path.read_bytes(), path.name).get("templates", {})
        if not isinstance(templates, dict) or not all(isinstance(t, dict) for t in templates.values()):
            raise ConfigError(f"{path.name}: 'templates' must map template names to objects")
        return templates

    # ----------------------------------------------------------------- writing

    def save_templates(self, templates: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the content of ``templates.json``."""
        data = json.dumps({"version": _VERSION, "templates": templates}, indent=2).encode() + b"\n"
        with self._locked():
            write_atomic(self.directory / self.TEMPLATES, data)

    def put(self, record: ProviderRecord) -> list[ConfigEvent]:
        """Create or replace a provider; its secrets are encrypted before they reach the disk.

        Returns:
            The resulting events: external edits of the tenant file found on the way (``source="file"``),
            then this change (``source="api"``); empty when nothing changed.

        Raises:
            RequestError: invalid tenant or provider name, or a credential among the plain settings.
            ConfigError: the tenant file is malformed or cannot be decrypted; it is left untouched.
        """
        self._check(record)
        # A private copy: the caller may go on mutating its dicts.
        record = ProviderRecord(
            record.tenant, record.name, record.type, copy.deepcopy(record.settings), dict(record.secrets)
        )
        path = self.tenant_file(record.tenant)
        with self._locked():
            doc, events = self._refresh(record.tenant, path)
            current = self._records.get(record.tenant, {})
            if current.get(record.name) == record:
                return events
            providers = doc.setdefault("providers", {})
            providers[record.name] = {
                "type": record.type,
                "settings": record.settings,
                "secrets": {k: self.cipher.encrypt(v) for k, v in sorted(record.secrets.items())},
            }
            self._write(path, doc)
            events += diff(record.tenant, current, {**current, record.name: record}, "api")
            self._set(record.tenant, {**current, record.name: record})
            return events

    def delete(self, tenant: str, name: str) -> list[ConfigEvent]:
        """Remove a provider; returns the events (empty when it did not exist)."""
        path = self.tenant_file(tenant)
        with self._locked():
            doc, events = self._refresh(tenant, path)
            current = self._records.get(tenant, {})
            if name not in current:
                return events
            doc.get("providers", {}).pop(name, None)
            self._write(path, doc)
            events += diff(tenant, {name: current[name]}, {}, "api")
            self._set(tenant, {k: v for k, v in current.items() if k != name})
            return events

    # ----------------------------------------------------------------- change detection

    def poll(self, source: ConfigSource = "file") -> list[ConfigEvent]:
        """Re-read tenant files changed since last seen and return what changed in them.

        A malformed or undecryptable file is logged and skipped (its last good content stays in
        effect); a file must be missing on two polls in a row before its providers count as removed,
        because some editors save by deleting and recreating.
        """
        with self._locked():
            events: list[ConfigEvent] = []
            present = self._tenant_files()
            names = {path.name: tenant for tenant, path in present.items()}
            for filename in sorted(self._seen.keys() - names.keys()):
                if filename not in self._missing:
                    self._missing.add(filename)
                    continue
                tenant = filename.removeprefix("tenant-").removesuffix(".json")
                events += diff(tenant, self._records.get(tenant, {}), {}, source)
                self._set(tenant, {})
                del self._seen[filename]
                self._missing.discard(filename)
            for filename in self._broken.keys() - names.keys():
                del self._broken[filename]
            for tenant, path in sorted(present.items()):
                self._missing.discard(path.name)
                try:
                    events += self._poll_file(tenant, path, source)
                except FileNotFoundError:
                    continue
            return events

    def _poll_file(self, tenant: str, path: Path, source: ConfigSource) -> list[ConfigEvent]:
        st = path.stat()
        seen = self._seen.get(path.name)
        if seen and seen.trusted and seen.signature == stat_signature(st):
            return []
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        if seen and seen.digest == digest:
            self._seen[path.name] = _Seen.of(st, raw)
            return []
        if self._broken.get(path.name) == digest:
            return []
        try:
            doc, records, plaintext = self._decode(raw, tenant, path.name)
        except ConfigError as exc:
            self._broken[path.name] = digest
            logger.error("ignoring the change to %s until it is fixed: %s", path, exc.message)
            return []
        self._broken.pop(path.name, None)
        events = diff(tenant, self._records.get(tenant, {}), records, source)
        self._set(tenant, records)
        self._seen[path.name] = _Seen.of(st, raw)
        if plaintext:
            self._seal(path, doc, plaintext)
        return events

    # ----------------------------------------------------------------- internals

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # The thread lock serialises this process (flock is per open file, so it would not); the flock
        # serialises processes sharing the directory. Not re-entrant: internal helpers never lock.
        with self._lock:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                _lock_fd(fd)
                yield
            finally:
                os.close(fd)

    def _set(self, tenant: str, records: Mapping[str, ProviderRecord]) -> None:
        updated = {k: v for k, v in self._records.items() if k != tenant}
        if records:
            updated[tenant] = dict(records)
        self._records = updated

    def _tenant_files(self) -> dict[str, Path]:
        files: dict[str, Path] = {}
        for path in self.directory.glob("tenant-*.json"):
            tenant = path.name.removeprefix("tenant-").removesuffix(".json")
            if TENANT_NAME.fullmatch(tenant):
                files[tenant] = path
        return files

    def _refresh(self, tenant: str, path: Path) -> tuple[dict[str, Any], list[ConfigEvent]]:
        """The tenant file's document, after folding in edits made since the store last saw it."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            events = diff(tenant, self._records.get(tenant, {}), {}, "file")
            self._set(tenant, {})
            self._seen.pop(path.name, None)
            return {"version": _VERSION, "providers": {}}, events
        seen = self._seen.get(path.name)
        if seen and seen.digest == hashlib.sha256(raw).hexdigest():
            return load_json(raw, path.name), []
        doc, records, plaintext = self._decode(raw, tenant, path.name)
        if plaintext:
            logger.warning("encrypting %d secret(s) that were stored in clear in %s", plaintext, path)
        events = diff(tenant, self._records.get(tenant, {}), records, "file")
        self._set(tenant, records)
        self._broken.pop(path.name, None)
        return doc, events

    def _write(self, path: Path, doc: dict[str, Any]) -> None:
        doc["version"] = _VERSION
        for entry in doc.get("providers", {}).values():
            secrets = entry.get("secrets", {})
            for key, value in secrets.items():
                if not is_encrypted(value):
                    secrets[key] = self.cipher.encrypt(value)
        data = json.dumps(doc, indent=2, ensure_ascii=False).encode() + b"\n"
        self._seen[path.name] = _Seen.of(write_atomic(path, data), data)

    def _seal(self, path: Path, doc: dict[str, Any], count: int) -> None:
        self._write(path, doc)
        logger.warning("encrypted %d secret(s) that were stored in clear in %s", count, path)

    def _decode(
        self, raw: bytes, tenant: str, filename: str
    ) -> tuple[dict[str, Any], dict[str, ProviderRecord], int]:
        """Parse a tenant file; returns its document, its records and how many secrets were in clear."""
        doc = load_json(raw, filename)
        providers = doc.get("providers", {})
        if not isinstance(providers, dict):
            raise ConfigError(f"{filename}: 'providers' must be an object of provider name -> provider")
        records: dict[str, ProviderRecord] = {}
        errors: list[str] = []
        plaintext = 0
        for name, entry in providers.items():
            where = f"{filename}: provider {name!r}"
            if not isinstance(entry, dict):
                errors.append(f"{where} must be an object")
                continue
            problems = [
                f"unknown key {k!r} (valid: type, settings, secrets)" for k in entry.keys() - _ENTRY_KEYS
            ]
            type_, settings, secrets = entry.get("type"), entry.get("settings", {}), entry.get("secrets", {})
            if not PROVIDER_NAME.fullmatch(name):
                problems.append("invalid provider name")
            if not isinstance(type_, str) or not type_:
                problems.append("'type' must be a non-empty string")
            if not isinstance(settings, dict):
                problems.append("'settings' must be an object")
            else:
                problems += [
                    f"settings.{key} is a credential: move it under 'secrets' so it is stored encrypted"
                    for key in _secret_paths(settings)
                ]
            if not isinstance(secrets, dict) or not all(isinstance(v, str) for v in secrets.values()):
                problems.append("'secrets' must be an object of strings")
            if problems:
                errors += [f"{where}: {p}" for p in problems]
                continue
            clear: dict[str, str] = {}
            for key, value in secrets.items():
                if is_encrypted(value):
                    try:
                        clear[key] = self.cipher.decrypt(value, what=f"secret {key!r} of {where}")
                    except ConfigError as exc:
                        errors.append(exc.message)
                else:
                    clear[key] = value
                    plaintext += 1
            records[name] = ProviderRecord(tenant, name, str(type_), dict(settings), clear)
        if errors:
            raise ConfigError("; ".join(errors))
        return doc, records, plaintext

    @staticmethod
    def _check(record: ProviderRecord) -> None:
        check_tenant(record.tenant)
        if not PROVIDER_NAME.fullmatch(record.name):
            raise RequestError(f"invalid provider name {record.name!r}", param="name")
        if not record.type:
            raise RequestError("a provider needs a type", param="type")
        if not all(isinstance(v, str) for v in record.secrets.values()):
            raise RequestError("secret values must be strings", param="secrets")
        try:
            json.dumps(record.settings)
        except (TypeError, ValueError) as exc:
            raise RequestError(f"provider settings must be JSON values: {exc}", param="settings") from exc
        leaked = _secret_paths(record.settings)
        if leaked:
            raise RequestError(
                f"setting(s) {', '.join(leaked)} hold credentials; pass them as secrets so they are "
                "stored encrypted",
                param=leaked[0],
            )


__all__ = ["PROVIDER_NAME", "TENANT_NAME", "ConfigStore", "ProviderRecord", "Records", "check_tenant", "diff"]
