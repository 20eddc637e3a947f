"""The whole podium exception tree.

Every error carries the HTTP status the gateway answers with, an OpenAI-style ``type`` and ``code``, and
two routing flags: ``retryable`` (the same call may succeed if tried again later) and ``failover``
(another provider may succeed where this one failed)::

    PodiumError
    ├── ConfigError                      500  invalid configuration, unknown component names
    ├── RequestError                     400  the caller's request is invalid
    │   └── ModelNotFound                404  no provider of the tenant serves that model
    ├── NotFound                         404  unknown provider, tenant resource, ...
    ├── Conflict                         409  the resource already exists
    ├── AuthError                        401  missing or invalid credentials
    │   └── PermissionDenied             403  authenticated, but not allowed
    ├── RateLimitExceeded                429  podium's own limits (``retry_after``)
    ├── BudgetExceeded                   402  a hard budget would be exceeded (``scope``)
    ├── ProviderError                    502  an upstream provider failed (``provider``, ``upstream_status``)
    │   ├── ProviderTimeout              504  retryable, failover
    │   ├── ProviderRateLimited          429  retryable, failover (``retry_after``, ``rate_limit_headers``)
    │   ├── ProviderUnavailable          503  retryable, failover: 5xx, 529 overloaded, refused, reset
    │   ├── ProviderAuthError            502  failover: the provider rejected podium's key (401/403)
    │   ├── ProviderBadRequest           400  the provider refused the request as invalid (no failover)
    │   ├── ProviderNotFound             404  failover: unknown model or endpoint at this provider
    │   ├── ContextLengthExceeded        400  failover (another model may have a larger window)
    │   └── MalformedResponse            502  retryable, failover: truncated or invalid body
    ├── NoHealthyProviders               503  no candidate provider to try (``retry_after``)
    ├── ShuttingDown                     503  the instance is draining before it stops; retry elsewhere
    ├── StateStoreUnavailable            503  the shared state store (Redis) cannot be reached
    └── AllProvidersFailed               502  every attempt failed (``attempts``)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class PodiumError(Exception):
    """Root of every podium error.

    Attributes:
        message: What went wrong and what to do about it.
        status: The HTTP status the gateway answers with.
        type: OpenAI-style error type (``invalid_request_error``, ``rate_limit_error``, ...).
        code: Short machine-readable code.
        param: The request parameter at fault, when there is one.
    """

    status: int = 500
    type: str = "api_error"
    code: str = "internal_error"
    retryable: bool = False
    failover: bool = False

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param

    def to_dict(self) -> dict[str, object]:
        """Return the OpenAI-style error body ``{"error": {...}}``."""
        return {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}


class ConfigError(PodiumError):
    """Invalid configuration: fix the named key and start again."""

    status = 500
    type = "configuration_error"
    code = "invalid_config"


class RequestError(PodiumError):
    """The caller's request is invalid."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class ModelNotFound(RequestError):
    """No provider of the tenant serves the requested model."""

    status = 404
    code = "model_not_found"


class NotFound(PodiumError):
    """The named resource does not exist (or belongs to another tenant)."""

    status = 404
    type = "invalid_request_error"
    code = "not_found"


class Conflict(PodiumError):
    """The resource already exists."""

    status = 409
    type = "invalid_request_error"
    code = "conflict"


class AuthError(PodiumError):
    """Missing or invalid credentials."""

    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(AuthError):
    """The caller is authenticated but not allowed to do this."""

    status = 403
    type = "permission_error"
    code = "permission_denied"


class RateLimitExceeded(PodiumError):
    """One of podium's own rate limits refused the request.

    Attributes:
        retry_after: Seconds after which the request would be admitted.
    """

    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    retryable = True

    def __init__(self, message: str, *, retry_after: float, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class BudgetExceeded(PodiumError):
    """A hard budget would be exceeded by this request.

    Attributes:
        scope: What the budget belongs to, e.g. ``tenant:acme:daily``.
    """

    status = 402
    type = "budget_exceeded"
    code = "budget_exceeded"

    def __init__(self, message: str, *, scope: str) -> None:
        super().__init__(message)
        self.scope = scope


class ProviderError(PodiumError):
    """An upstream provider failed.

    Attributes:
        provider: The provider's name.
        upstream_status: The HTTP status the provider answered with, if any.
    """

    status = 502
    type = "upstream_error"
    code = "provider_error"
    retryable = False
    failover = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        upstream_status: int | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, code=code, param=param)
        self.provider = provider
        self.upstream_status = upstream_status


class ProviderTimeout(ProviderError):
    """The provider did not answer in time."""

    status = 504
    type = "timeout_error"
    code = "provider_timeout"
    retryable = True


class ProviderRateLimited(ProviderError):
    """The provider answered 429.

    Attributes:
        retry_after: Seconds the provider asked us to wait (None when it did not say).
        rate_limit_headers: The provider's ``x-ratelimit-*`` / ``anthropic-ratelimit-*`` headers.
    """

    status = 429
    type = "rate_limit_error"
    code = "provider_rate_limited"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        upstream_status: int | None = 429,
        retry_after: float | None = None,
        rate_limit_headers: Mapping[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, upstream_status=upstream_status, code=code)
        self.retry_after = retry_after
        self.rate_limit_headers = dict(rate_limit_headers or {})


class ProviderUnavailable(ProviderError):
    """The provider is down, overloaded (5xx, 529) or the connection failed."""

    status = 503
    type = "service_unavailable"
    code = "provider_unavailable"
    retryable = True


class ProviderAuthError(ProviderError):
    """The provider rejected podium's credentials for it: fix the provider's API key."""

    status = 502
    type = "upstream_auth_error"
    code = "provider_auth_error"


class ProviderBadRequest(ProviderError):
    """The provider refused the request as invalid; another provider would refuse it too."""

    status = 400
    type = "invalid_request_error"
    code = "provider_bad_request"
    failover = False


class ProviderNotFound(ProviderError):
    """The provider does not know the model or endpoint (another provider may)."""

    status = 404
    type = "invalid_request_error"
    code = "upstream_not_found"


class ContextLengthExceeded(ProviderError):
    """The prompt does not fit the model's context window."""

    status = 400
    type = "invalid_request_error"
    code = "context_length_exceeded"


class MalformedResponse(ProviderError):
    """The provider's answer was truncated or not in its documented format."""

    status = 502
    type = "upstream_error"
    code = "malformed_response"
    retryable = True


class NoHealthyProviders(PodiumError):
    """No provider is available to try for this request.

    Attributes:
        retry_after: Seconds until the soonest provider may be tried again, when known.
    """

    status = 503
    type = "service_unavailable"
    code = "no_healthy_providers"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ShuttingDown(PodiumError):
    """The instance is finishing its requests before it stops; send new ones to another replica."""

    status = 503
    type = "service_unavailable"
    code = "shutting_down"
    retryable = True


class StateStoreUnavailable(PodiumError):
    """The shared state store (Redis) that limits and budgets live in cannot be reached.

    Nothing is admitted without it: limits and budgets could not be kept across replicas.
    """

    status = 503
    type = "service_unavailable"
    code = "state_store_unavailable"
    retryable = True


@dataclass(frozen=True, slots=True)
class Attempt:
    """One upstream attempt made while serving a request."""

    provider: str
    model: str
    error: ProviderError | None
    latency_ms: float


class AllProvidersFailed(PodiumError):
    """Every attempt failed.

    Attributes:
        attempts: Each attempt in order, with the error it ended with.
    """

    status = 502
    type = "upstream_error"
    code = "all_providers_failed"

    def __init__(self, message: str, *, attempts: Sequence[Attempt]) -> None:
        super().__init__(message)
        self.attempts = list(attempts)

    @property
    def last_error(self) -> ProviderError | None:
        """The error of the final attempt."""
        for attempt in reversed(self.attempts):
            if attempt.error is not None:
                return attempt.error
        return None
