"""Provider templates: provider settings with ``{{VARIABLE}}`` placeholders.

Placeholders:

- ``{{NAME}}``: required; rendering without it fails, listing every missing variable at once.
- ``{{NAME?}}``: optional; when not given (or empty) the setting holding it is left out.
- ``{{NAME?default}}``: optional with a default value.

A value that is exactly one placeholder takes the variable as given (a number stays a number); a
placeholder inside a longer string is replaced by its text. Templates never hold secrets themselves:
a credential setting (``apiKey``, an ``Authorization`` header, ...) must be a placeholder, because
registered templates are saved unencrypted in ``templates.json``. A template without ``type`` creates
``custom`` providers.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from podium.config.crypto import is_secret_key
from podium.config.store import ConfigStore
from podium.errors import ConfigError, NotFound, RequestError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(\?[^}]*)?\}\}")
_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DROP = object()

BUILTIN_TEMPLATES: dict[str, dict[str, Any]] = {
    "openai": {
        "type": "openai",
        "apiKey": "{{OPENAI_API_KEY}}",
        "organization": "{{OPENAI_ORG_ID?}}",
        "baseUrl": "{{OPENAI_BASE_URL?}}",
        "defaultModel": "{{OPENAI_MODEL?gpt-4o-mini}}",
    },
    "anthropic": {
        "type": "anthropic",
        "apiKey": "{{ANTHROPIC_API_KEY}}",
        "baseUrl": "{{ANTHROPIC_BASE_URL?}}",
        "defaultModel": "{{ANTHROPIC_MODEL?claude-haiku-4-5}}",
        "anthropicVersion": "{{ANTHROPIC_VERSION?2023-06-01}}",
    },
    "google": {
        "type": "google",
        "apiKey": "{{GOOGLE_API_KEY}}",
        "baseUrl": "{{GOOGLE_BASE_URL?}}",
        "defaultModel": "{{GOOGLE_MODEL?gemini-2.5-flash}}",
    },
    "ollama": {
        "type": "ollama",
        "baseUrl": "{{OLLAMA_BASE_URL?http://localhost:11434}}",
        "defaultModel": "{{OLLAMA_MODEL?}}",
    },
    "lmstudio": {
        "type": "local",
        "serverType": "lmstudio",
        "baseUrl": "{{LMSTUDIO_BASE_URL?http://localhost:1234/v1}}",
        "defaultModel": "{{LMSTUDIO_MODEL?}}",
    },
    "custom": {
        "type": "custom",
        "baseUrl": "{{CUSTOM_API_URL}}",
        "apiKey": "{{CUSTOM_API_KEY?}}",
        "requestFormat": "{{CUSTOM_REQUEST_FORMAT?openai}}",
        "responseFormat": "{{CUSTOM_RESPONSE_FORMAT?openai}}",
        "defaultModel": "{{CUSTOM_MODEL?}}",
    },
}


def placeholders(template: Any) -> dict[str, str | None]:
    """Every variable a template uses: ``{name: None}`` for required ones, ``{name: default}`` else.

    An optional placeholder without default maps to ``""``.
    """
    found: dict[str, str | None] = {}
    for text in _strings(template):
        for m in _PLACEHOLDER.finditer(text):
            default = m.group(2)[1:] if m.group(2) else None
            # A variable required anywhere is required.
            found[m.group(1)] = None if default is None or found.get(m.group(1), "") is None else default
    return found


def render(
    template: Mapping[str, Any], variables: Mapping[str, Any], *, name: str = "template"
) -> dict[str, Any]:
    """Fill a template's placeholders from ``variables``.

    Args:
        template: Settings with placeholders.
        variables: Values by variable name; names the template does not use are ignored, so the
            environment can be passed as is.
        name: The template's name, for error messages.

    Raises:
        RequestError: variables are missing (all of them are listed) or have a non-scalar value.
    """
    missing: set[str] = set()
    bad: set[str] = set()

    def value_of(m: re.Match[str]) -> Any:
        var, optional = m.group(1), m.group(2)
        value = variables.get(var)
        if value is None or value == "":
            if optional is None:
                missing.add(var)
                return _DROP
            return optional[1:] or _DROP
        if not isinstance(value, str | int | float | bool):
            bad.add(var)
            return _DROP
        return value

    def fill(node: Any) -> Any:
        if isinstance(node, Mapping):
            filled = {k: fill(v) for k, v in node.items()}
            return {k: v for k, v in filled.items() if v is not _DROP}
        if isinstance(node, list):
            return [v for v in (fill(x) for x in node) if v is not _DROP]
        if not isinstance(node, str):
            return copy.deepcopy(node)
        whole = _PLACEHOLDER.fullmatch(node.strip())
        if whole:
            return value_of(whole)
        parts: list[str] = []
        last = 0
        for m in _PLACEHOLDER.finditer(node):
            value = value_of(m)
            if value is _DROP:
                return _DROP
            parts += [node[last : m.start()], str(value)]
            last = m.end()
        return "".join([*parts, node[last:]])

    rendered = fill(template)
    problems = []
    if missing:
        problems.append(f"missing variable(s) {', '.join(sorted(missing))}")
    if bad:
        problems.append(f"variable(s) {', '.join(sorted(bad))} must be strings, numbers or booleans")
    if problems:
        raise RequestError(f"cannot render template {name!r}: " + "; ".join(problems), param="variables")
    assert isinstance(rendered, dict)  # a Mapping renders to a dict
    return rendered


def check_template(name: str, template: Any) -> None:
    """Raise ``ConfigError`` listing every problem of a template (name, shape, placeholders, secrets)."""
    errors: list[str] = []
    if not _TEMPLATE_NAME.fullmatch(name):
        errors.append("the name must be 1-64 letters, digits, '.', '_' or '-'")
    if not isinstance(template, Mapping):
        raise ConfigError(f"invalid template {name!r}: it must be an object of provider settings")
    if "type" in template and not (isinstance(template["type"], str) and template["type"]):
        errors.append("'type' must be a non-empty string")
    for text in _strings(template):
        stripped = _PLACEHOLDER.sub("", text)
        if "{{" in stripped or "}}" in stripped:
            errors.append(
                f"malformed placeholder in {text!r}: use {{{{NAME}}}}, {{{{NAME?}}}} or {{{{NAME?default}}}}"
            )
    for path, value in _items(template):
        if is_secret_key(path.rsplit(".", 1)[-1]) and not (
            isinstance(value, str) and _PLACEHOLDER.fullmatch(value.strip())
        ):
            errors.append(f"{path} holds a credential: make it a placeholder such as {{{{API_KEY}}}}")
    if errors:
        raise ConfigError(f"invalid template {name!r}: " + "; ".join(errors))


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, Mapping):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def _items(node: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out += _items(value, f"{path}.")
        else:
            out.append((path, value))
    return out


class TemplateRegistry:
    """Built-in templates plus registered ones, saved in the store's ``templates.json``.

    Args:
        store: Where registered templates persist; None keeps them in memory only.
    """

    def __init__(self, store: ConfigStore | None = None) -> None:
        self._store = store
        self._custom: dict[str, dict[str, Any]] = {}
        for name, template in (store.load_templates() if store else {}).items():
            check_template(name, template)
            self._custom[name] = template

    def names(self) -> list[str]:
        """Every template name, built-in and registered, sorted."""
        return sorted({*BUILTIN_TEMPLATES, *self._custom})

    def registered(self) -> dict[str, dict[str, Any]]:
        """A copy of the registered (not built-in) templates, by name."""
        return copy.deepcopy(self._custom)

    def get(self, name: str) -> dict[str, Any]:
        """A copy of the template named ``name``.

        Raises:
            NotFound: no such template; the message lists the valid names.
        """
        template = self._custom[name] if name in self._custom else BUILTIN_TEMPLATES.get(name)
        if template is None:
            raise NotFound(f"unknown template {name!r}; valid: {', '.join(self.names())}")
        return copy.deepcopy(template)

    def register(self, name: str, template: Mapping[str, Any]) -> None:
        """Add or replace a template and save it.

        Raises:
            ConfigError: the name is a built-in's, or the template is invalid (every problem listed).
        """
        if name in BUILTIN_TEMPLATES:
            raise ConfigError(f"{name!r} is a built-in template; register yours under another name")
        check_template(name, template)
        updated = {**self._custom, name: copy.deepcopy(dict(template))}
        if self._store is not None:
            self._store.save_templates(updated)
        self._custom = updated

    def unregister(self, name: str) -> None:
        """Remove a registered template.

        Raises:
            NotFound: no registered template has that name.
        """
        if name not in self._custom:
            raise NotFound(f"no registered template {name!r}; registered: {', '.join(sorted(self._custom))}")
        updated = {k: v for k, v in self._custom.items() if k != name}
        if self._store is not None:
            self._store.save_templates(updated)
        self._custom = updated

    def render(self, name: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        """The provider settings of template ``name`` filled from ``variables`` (``type`` defaults to custom).

        Raises:
            NotFound: no such template.
            RequestError: variables are missing (all listed).
        """
        rendered = render(self.get(name), variables, name=name)
        rendered.setdefault("type", "custom")
        return rendered


__all__ = ["BUILTIN_TEMPLATES", "TemplateRegistry", "check_template", "placeholders", "render"]
