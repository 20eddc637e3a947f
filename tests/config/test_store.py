"""The encrypted configuration directory, with real files: secrets never reach the disk in clear."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from pathlib import Path

import pytest

from podium.config.crypto import Cipher
from podium.config.store import ConfigStore, ProviderRecord
from podium.errors import ConfigError, RequestError
from podium.events import ConfigCreated, ConfigRemoved, ConfigUpdated
from tests.config import OTHER_SECRET, SECRET, directory_bytes, record


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return tmp_path / "config"


@pytest.fixture
def store(config_dir: Path, key: bytes) -> ConfigStore:
    return ConfigStore(config_dir, Cipher(key))


def _assert_no_plaintext(directory: Path, *secrets: str) -> None:
    for name, data in directory_bytes(directory).items():
        for secret in secrets:
            assert secret.encode() not in data, f"{secret} in clear in {name}"


def test_round_trip_keeps_settings_and_secrets(store: ConfigStore, config_dir: Path, key: bytes) -> None:
    original = ProviderRecord(
        "acme",
        "my-api",
        "custom",
        {"base_url": "https://api.example.com/v1", "headers": {"X-Team": "red"}, "priority": 2},
        {"api_key": SECRET, "header:Authorization": f"Bearer {OTHER_SECRET}"},
    )
    store.put(original)
    store.put(record("gpt", tenant="default"))
    loaded = ConfigStore(config_dir, Cipher(key)).load_all()
    assert loaded == {"acme": {"my-api": original}, "default": {"gpt": record("gpt", tenant="default")}}
    assert sorted(p.name for p in config_dir.glob("*.json")) == ["tenant-acme.json", "tenant-default.json"]
    entry = json.loads((config_dir / "tenant-acme.json").read_text())["providers"]["my-api"]
    assert entry["settings"]["base_url"] == "https://api.example.com/v1"
    assert all(v.startswith("enc:v1:") for v in entry["secrets"].values())


def test_no_plaintext_after_put_update_reload_and_delete(
    store: ConfigStore, config_dir: Path, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        store.put(record(secret=SECRET))
        _assert_no_plaintext(config_dir, SECRET)
        store.put(record(secret=OTHER_SECRET))
        _assert_no_plaintext(config_dir, SECRET, OTHER_SECRET)
        reloaded = ConfigStore(config_dir, Cipher(key))
        assert reloaded.load_all()["acme"]["gpt"].secrets == {"api_key": OTHER_SECRET}
        reloaded.put(record("second", secret=SECRET))
        reloaded.delete("acme", "gpt")
        _assert_no_plaintext(config_dir, SECRET, OTHER_SECRET)
    assert SECRET not in caplog.text
    assert OTHER_SECRET not in caplog.text


def test_files_are_private_and_writes_leave_no_temporary_files(store: ConfigStore, config_dir: Path) -> None:
    store.put(record())
    store.put(record(default_model="gpt-4o"))
    store.save_templates({"t": {"baseUrl": "{{URL}}"}})
    assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700
    for path in config_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    assert not [p for p in config_dir.iterdir() if p.name.endswith(".tmp")]


def test_wrong_key_is_a_clear_error_and_touches_nothing(store: ConfigStore, config_dir: Path) -> None:
    store.put(record())
    store.put(record("claude", tenant="other"))
    before = directory_bytes(config_dir)
    with pytest.raises(ConfigError) as err:
        ConfigStore(config_dir, Cipher(os.urandom(32))).load_all()
    assert "AI_ENCRYPTION_KEY differs from the key these secrets were encrypted with" in err.value.message
    assert "tenant-acme.json" in err.value.message
    assert "tenant-other.json" in err.value.message
    with pytest.raises(ConfigError):
        ConfigStore(config_dir, Cipher(os.urandom(32))).put(record("new"))
    assert directory_bytes(config_dir) == before


def test_secrets_typed_in_clear_are_encrypted_on_load(
    config_dir: Path, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    config_dir.mkdir()
    doc = {"providers": {"hand": {"type": "openai", "settings": {}, "secrets": {"api_key": SECRET}}}}
    (config_dir / "tenant-acme.json").write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING):
        loaded = ConfigStore(config_dir, Cipher(key)).load_all()
    assert loaded["acme"]["hand"].secrets == {"api_key": SECRET}
    _assert_no_plaintext(config_dir, SECRET)
    assert "encrypted 1 secret(s) that were stored in clear" in caplog.text
    assert SECRET not in caplog.text
    assert ConfigStore(config_dir, Cipher(key)).load_all() == loaded


def test_malformed_file_fails_loading_with_every_problem_and_is_kept(config_dir: Path, key: bytes) -> None:
    config_dir.mkdir()
    bad_json = config_dir / "tenant-a.json"
    bad_json.write_text('{"providers": {')
    bad_entry = config_dir / "tenant-b.json"
    bad_entry.write_text(json.dumps({"providers": {"x": {"settings": {"api_key": SECRET}, "apiKey": "k"}}}))
    store = ConfigStore(config_dir, Cipher(key))
    before = directory_bytes(config_dir)
    with pytest.raises(ConfigError) as err:
        store.load_all()
    message = err.value.message
    assert "tenant-a.json is not valid JSON" in message
    assert "unknown key 'apiKey'" in message
    assert "'type' must be a non-empty string" in message
    assert "settings.api_key is a credential" in message
    assert SECRET not in message
    assert directory_bytes(config_dir) == before


def test_put_refuses_to_overwrite_a_malformed_tenant_file(store: ConfigStore, config_dir: Path) -> None:
    store.put(record())
    path = config_dir / "tenant-acme.json"
    path.write_text('{"providers": ')
    with pytest.raises(ConfigError, match="not valid JSON"):
        store.put(record("another"))
    assert path.read_text() == '{"providers": '


@pytest.mark.parametrize("tenant", ["../evil", "a/b", "", ".hidden", "x" * 129, "a\x00b"])
def test_tenant_names_cannot_escape_the_directory(store: ConfigStore, tmp_path: Path, tenant: str) -> None:
    with pytest.raises(RequestError, match="invalid tenant name"):
        store.put(record(tenant=tenant))
    assert [p.name for p in tmp_path.iterdir()] == ["config"]


def test_credentials_among_plain_settings_are_refused(store: ConfigStore) -> None:
    with pytest.raises(RequestError, match=r"headers\.Authorization"):
        store.put(ProviderRecord("acme", "p", "custom", {"headers": {"Authorization": f"Bearer {SECRET}"}}))


def test_put_and_delete_report_what_changed(store: ConfigStore) -> None:
    (created,) = store.put(record())
    assert isinstance(created, ConfigCreated)
    assert (created.tenant, created.provider, created.source) == ("acme", "gpt", "api")
    assert created.after == {
        "type": "openai",
        "settings": {"default_model": "gpt-4o-mini"},
        "secrets": {"api_key": "sk-...cdef"},
    }
    assert store.put(record()) == []
    (updated,) = store.put(record(secret=OTHER_SECRET))
    assert isinstance(updated, ConfigUpdated)
    assert updated.before is not None and updated.after is not None
    assert updated.before["secrets"] == {"api_key": "sk-...cdef"}
    assert updated.after["secrets"] == {"api_key": "sk-...3210"}
    (removed,) = store.delete("acme", "gpt")
    assert isinstance(removed, ConfigRemoved)
    assert store.delete("acme", "gpt") == []
    assert store.get("acme", "gpt") is None


def test_put_folds_in_edits_made_meanwhile_by_another_process(config_dir: Path, key: bytes) -> None:
    ours, theirs = ConfigStore(config_dir, Cipher(key)), ConfigStore(config_dir, Cipher(key))
    ours.put(record("a"))
    theirs.load_all()
    theirs.put(record("b"))
    events = ours.put(record("c"))
    assert [(type(e).__name__, e.provider, e.source) for e in events] == [
        ("ConfigCreated", "b", "file"),
        ("ConfigCreated", "c", "api"),
    ]
    assert sorted(ConfigStore(config_dir, Cipher(key)).load_all()["acme"]) == ["a", "b", "c"]


def test_concurrent_writers_lose_nothing(config_dir: Path, key: bytes) -> None:
    stores = [ConfigStore(config_dir, Cipher(key)) for _ in range(2)]

    def write(store: ConfigStore, prefix: str) -> None:
        for i in range(15):
            store.put(record(f"{prefix}{i}"))

    threads = [threading.Thread(target=write, args=(s, f"w{n}-")) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ConfigStore(config_dir, Cipher(key)).load_all()["acme"]) == 30


def test_records_are_private_copies(store: ConfigStore) -> None:
    mine = record()
    store.put(mine)
    mine.settings["default_model"] = "changed-after-put"
    stored = store.get("acme", "gpt")
    assert stored is not None and stored.settings["default_model"] == "gpt-4o-mini"


def test_repr_masks_secrets() -> None:
    assert SECRET not in repr(record())
    assert "sk-...cdef" in repr(record())


def test_templates_and_defaults_files(store: ConfigStore, config_dir: Path) -> None:
    assert store.load_templates() == {}
    assert store.load_defaults() == {}
    store.save_templates({"mine": {"baseUrl": "{{API_URL}}"}})
    assert store.load_templates() == {"mine": {"baseUrl": "{{API_URL}}"}}
    (config_dir / "defaults.json").write_text('{"timeout": 30}')
    assert store.load_defaults() == {"timeout": 30}
    (config_dir / "defaults.json").write_text("[1]")
    with pytest.raises(ConfigError, match=r"defaults\.json must hold a JSON object"):
        store.load_defaults()
