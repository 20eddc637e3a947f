"""Export and import: everything an instance is configured with, and its history, as one JSON document.

Providers, templates, tenants, rate limits and budgets, and the conversation history.

The document (``format: "podium-export"``, ``version: 1``)::

    {"format": "podium-export", "version": 1, "exported_at": "...", "includes_secrets": false,
     "tenants": ["acme"],
     "providers": [{"tenant": "acme", "name": "gpt", "type": "openai",
                    "settings": {...}, "secrets": {...} | absent, "required_secrets": ["api_key"]}],
     "templates": {"my-template": {...}},
     "limits": [{"scope": "tenant", "target": "acme", "limits": {...}}],
     "budgets": [{"tenant": "acme", "key_id": null, "budget": {...}, "required_secrets": [...]}],
     "history": [{"id": ..., "tenant": ..., "user_id": ..., "messages": [...]}, ...]}

Without secrets the document holds none at all: each provider lists the names of the secrets it needs
(``required_secrets``), and importing it asks for them instead of creating providers that cannot work.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from pydantic import ValidationError

from podium._governance_api import governance_config
from podium._provider_records import join_settings, split_settings
from podium.config.templates import check_template
from podium.costs.budgets import Budget
from podium.errors import Conflict, RequestError
from podium.limits.config import RateLimitConfig
from podium.storage.conversations import Conversation, Conversations

if TYPE_CHECKING:
    from podium.orchestrator import Orchestrator

FORMAT = "podium-export"
VERSION = 1


class MissingSecrets(RequestError):
    """An import needs secrets the document does not hold.

    Attributes:
        missing: ``{"tenant/provider": ["api_key", ...]}``.
    """

    code = "missing_secrets"

    def __init__(self, missing: Mapping[str, list[str]]) -> None:
        self.missing = {k: list(v) for k, v in missing.items()}
        listed = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(self.missing.items()))
        super().__init__(
            f"the export holds no secrets; pass them as secrets={{'tenant/provider': {{'api_key': ...}}}} "
            f"(missing: {listed}). Nothing was imported.",
            param="secrets",
        )


async def export_data(
    orch: Orchestrator, *, include_secrets: bool = False, include_history: bool = True
) -> dict[str, Any]:
    """The instance's providers, templates, tenants and (optionally) conversation history.

    Providers added as code objects (``add_provider``) are not configuration and are left out.
    """
    providers: list[dict[str, Any]] = []
    for tenant in orch.tenants():
        for info in orch.list_providers(tenant):
            provider = orch.provider(info.name, tenant)
            if not orch.is_configured(info.name, tenant):
                continue
            settings, secrets = split_settings(provider)
            entry: dict[str, Any] = {
                "tenant": tenant,
                "name": info.name,
                "type": provider.config.type,
                "settings": settings,
                "required_secrets": sorted(secrets),
            }
            if include_secrets:
                entry["secrets"] = secrets
            providers.append(entry)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "includes_secrets": include_secrets,
        "tenants": sorted({p["tenant"] for p in providers}),
        "providers": providers,
        "templates": orch.templates.registered(),
    }
    limits, budgets = governance_config(orch.governance)
    for entry in budgets:
        webhook = entry["budget"].pop("alert_webhook", None)
        entry["required_secrets"] = ["alert_webhook"] if webhook else []
        if webhook and include_secrets:
            entry["secrets"] = {"alert_webhook": webhook}
    doc["limits"], doc["budgets"] = limits, budgets
    if include_history:
        database = orch.database
        conversations: list[Conversation] = []
        if database is not None:
            if orch.writer is not None:
                await orch.writer.flush()
            conversations = await Conversations(database).dump()
        doc["history"] = msgspec.to_builtins(conversations)
    return doc


def _check_document(data: Mapping[str, Any]) -> None:
    if data.get("format") != FORMAT:
        raise RequestError(f"not a podium export: 'format' must be {FORMAT!r}", param="data")
    if data.get("version") != VERSION:
        raise RequestError(
            f"unsupported export version {data.get('version')!r}; this podium reads version {VERSION}",
            param="data",
        )


async def import_data(
    orch: Orchestrator,
    data: Mapping[str, Any],
    *,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, int]:
    """Recreate an export's providers, templates and history in ``orch``.

    Args:
        orch: The instance to import into (a fresh one, usually).
        data: A document from ``export_data``.
        secrets: For exports without secrets: ``{"tenant/provider": {"api_key": ...}}``; also
            overrides secrets the document holds.

    Returns:
        Counts: ``providers``, ``templates``, ``limits``, ``budgets``, ``conversations`` imported.

    Raises:
        MissingSecrets: a provider needs a secret that neither the document nor ``secrets`` gives;
            nothing is imported.
        Conflict: a provider or conversation of the document already exists; nothing is imported.
        RequestError: the document is not a podium export or a provider in it is invalid.
    """
    _check_document(data)
    secrets = secrets or {}
    try:
        entries = [dict(p) for p in data.get("providers", [])]
        limits = [dict(e) for e in data.get("limits", [])]
        budgets = [dict(e) for e in data.get("budgets", [])]
        history = msgspec.convert(data.get("history", []), list[Conversation])
    except (TypeError, ValueError, msgspec.ValidationError) as exc:
        raise RequestError(f"malformed export document: {exc}", param="data") from exc
    # Check everything before changing anything, so a failed import leaves no half-made state.
    missing: dict[str, list[str]] = {}
    planned: list[tuple[dict[str, Any], dict[str, str]]] = []
    for entry in entries:
        key = f"{entry['tenant']}/{entry['name']}"
        given = {**(entry.get("secrets") or {}), **(secrets.get(key) or {})}
        lacking = [s for s in entry.get("required_secrets", []) if s not in given]
        if lacking:
            missing[key] = lacking
        planned.append((entry, given))
        if entry["name"] in {p.name for p in orch.list_providers(entry["tenant"])}:
            raise Conflict(f"provider {key} already exists; nothing was imported")
    for entry in budgets:
        key = f"budget:{entry['tenant']}" + (f"/{entry['key_id']}" if entry.get("key_id") else "")
        given = {**(entry.get("secrets") or {}), **(secrets.get(key) or {})}
        lacking = [s for s in entry.get("required_secrets", []) if s not in given]
        if lacking:
            missing[key] = lacking
        entry["budget"] = {**entry["budget"], **given}
    if missing:
        raise MissingSecrets(missing)
    _check_governance(limits, budgets)
    templates = dict(data.get("templates") or {})
    for name, template in templates.items():
        check_template(name, template)
    values = [join_settings(dict(entry.get("settings") or {}), given) for entry, given in planned]
    for (entry, _), settings in zip(planned, values, strict=True):
        await orch.check_provider(type=entry["type"], name=entry["name"], tenant=entry["tenant"], **settings)
    restored = 0
    if history:
        database = orch.database
        if database is None:
            raise RequestError(
                "this orchestrator keeps no history (in memory); import into an orchestrator started "
                "from settings, or drop the document's 'history'",
                param="data",
            )
        restored = await Conversations(database).restore(history)  # all or nothing
    for name, template in templates.items():
        orch.templates.register(name, template)
    for (entry, _), settings in zip(planned, values, strict=True):
        await orch.create_provider(type=entry["type"], name=entry["name"], tenant=entry["tenant"], **settings)
    for limit in limits:
        orch.set_rate_limit(limit["target"], limit["limits"], limit["scope"])
    for budget in budgets:
        orch.set_budget(budget["tenant"], key_id=budget.get("key_id"), **budget["budget"])
    created = len(planned)
    return {
        "providers": created,
        "templates": len(templates),
        "limits": len(limits),
        "budgets": len(budgets),
        "conversations": restored,
    }


def _check_governance(limits: list[dict[str, Any]], budgets: list[dict[str, Any]]) -> None:
    """Refuse invalid limits or budgets before anything is imported."""
    errors: list[str] = []
    for entry in limits:
        try:
            RateLimitConfig.model_validate(entry["limits"])
        except (KeyError, ValidationError) as exc:
            errors.append(f"limits of {entry.get('scope')} {entry.get('target')!r}: {exc}")
    for entry in budgets:
        try:
            Budget.model_validate(entry["budget"])
        except (KeyError, ValidationError) as exc:
            errors.append(f"budget of {entry.get('tenant')!r}: {exc}")
    if errors:
        raise RequestError("invalid export document: " + "; ".join(errors) + ". Nothing was imported.")


__all__ = ["FORMAT", "VERSION", "MissingSecrets", "export_data", "import_data"]
