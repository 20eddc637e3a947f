"""Provider configuration at rest: the encrypted config directory, templates, validators, change watching.

See ``ConfigManager`` for the seed's ``configManager`` API (``register_template``, ``register_validator``,
``register_hook``).
"""

from podium.config.crypto import Cipher, is_secret_key, mask_secret
from podium.config.manager import CONFIG_EVENTS, ConfigManager
from podium.config.store import ConfigStore, ProviderRecord, Records, check_tenant
from podium.config.templates import BUILTIN_TEMPLATES, TemplateRegistry, render
from podium.config.validators import Validator, ValidatorRegistry
from podium.config.watcher import ConfigWatcher, RedisConfigSync, RemoteChange

__all__ = [
    "BUILTIN_TEMPLATES",
    "CONFIG_EVENTS",
    "Cipher",
    "ConfigManager",
    "ConfigStore",
    "ConfigWatcher",
    "ProviderRecord",
    "Records",
    "RedisConfigSync",
    "RemoteChange",
    "TemplateRegistry",
    "Validator",
    "ValidatorRegistry",
    "check_tenant",
    "is_secret_key",
    "mask_secret",
    "render",
]
