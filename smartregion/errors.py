"""Domain errors.

Every error the services raise is a `SmartRegionError`. Each carries an NGSI-LD error type name
(ETSI GS CIM 009 V1.8 §5.5.2, table 5.5.2-1) and a human-readable title/detail, but no HTTP
status: each interface maps them in one place (`smartregion.api.ngsild.problems`).

    SmartRegionError
    ├── InvalidRequest           malformed request (bad JSON, wrong media type semantics)
    ├── BadRequestData           well-formed but invalid content (bad id, attribute shape, geometry)
    ├── AlreadyExists            entity/attribute/context already there
    ├── OperationNotSupported    valid request the broker does not support
    ├── ResourceNotFound         entity, attribute, type, context… not found
    ├── NonExistingTenant        tenant has never been written to
    ├── LdContextNotAvailable    a remote @context could not be retrieved
    ├── TooComplexQuery / TooManyResults
    ├── Conflict                 a context in use cannot be deleted, …
    ├── UnsupportedMediaType / NotAcceptable / PayloadTooLarge / MethodNotAllowed
    ├── Unauthenticated          a write without credentials while anonymous writes are off
    ├── Gone                     a resource that existed and was removed for good (retention)
    ├── Overloaded               too much work in flight: try again shortly
    └── InternalError            a bug: never raised on purpose for client input
"""

from __future__ import annotations

from typing import Any, ClassVar

NGSI_ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


class SmartRegionError(Exception):
    """Base of every domain error."""

    error_type: ClassVar[str] = "InternalError"
    #: whether `error_type` is one of the NGSI-LD error URIs (prefixed with NGSI_ERRORS)
    ngsi: ClassVar[bool] = True

    def __init__(self, detail: str, *, title: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.title = title or self.default_title()
        self.extra = extra

    @classmethod
    def default_title(cls) -> str:
        """A short title derived from the error type."""
        return cls.error_type

    @property
    def type_uri(self) -> str:
        """The problem type URI."""
        if self.ngsi:
            return NGSI_ERRORS + self.error_type
        return "about:blank"


class InvalidRequest(SmartRegionError):
    """The request is malformed (syntax, unknown parameter values, bad JSON)."""

    error_type = "InvalidRequest"


class BadRequestData(SmartRegionError):
    """The request is well-formed but its content is invalid."""

    error_type = "BadRequestData"


class AlreadyExists(SmartRegionError):
    """The resource already exists."""

    error_type = "AlreadyExists"


class OperationNotSupported(SmartRegionError):
    """The operation is not supported."""

    error_type = "OperationNotSupported"


class ResourceNotFound(SmartRegionError):
    """The resource does not exist (or the caller may not know it does)."""

    error_type = "ResourceNotFound"


class NonExistingTenant(SmartRegionError):
    """The tenant named in NGSILD-Tenant does not exist."""

    error_type = "NonExistingTenant"


class LdContextNotAvailable(SmartRegionError):
    """A referenced remote @context could not be retrieved or is invalid."""

    error_type = "LdContextNotAvailable"


class TooComplexQuery(SmartRegionError):
    """The query is too complex to be executed."""

    error_type = "TooComplexQuery"


class TooManyResults(SmartRegionError):
    """The query would return too many results."""

    error_type = "TooManyResults"


class Conflict(SmartRegionError):
    """The request conflicts with the resource's state (e.g. a context still in use)."""

    error_type = "Conflict"
    ngsi = False


class UnsupportedMediaType(SmartRegionError):
    """The request body's media type is not supported."""

    error_type = "UnsupportedMediaType"
    ngsi = False


class NotAcceptable(SmartRegionError):
    """None of the media types in Accept can be produced."""

    error_type = "NotAcceptable"
    ngsi = False


class PayloadTooLarge(SmartRegionError):
    """The request body exceeds the configured limit."""

    error_type = "PayloadTooLarge"
    ngsi = False


class Unauthenticated(SmartRegionError):
    """The request needs credentials and carries none (or invalid ones)."""

    error_type = "Unauthenticated"
    ngsi = False


class MethodNotAllowed(SmartRegionError):
    """The HTTP method is not allowed on this resource."""

    error_type = "MethodNotAllowed"
    ngsi = False


class Gone(SmartRegionError):
    """The resource existed and has been removed for good (an event-stream page past retention)."""

    error_type = "Gone"
    ngsi = False


class Overloaded(SmartRegionError):
    """The server has too much work in flight for this request now; retry after a moment."""

    error_type = "Overloaded"
    ngsi = False


class InternalError(SmartRegionError):
    """An unexpected failure; a bug, never a response to client input."""

    error_type = "InternalError"
