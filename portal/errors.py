"""Typed API errors. Each carries CloudStack's HTTP error code and cserrorcode and is rendered
once, at the edge, in CloudStack's error envelope (see portal.api.render)."""
from __future__ import annotations


class ApiError(Exception):
    """Base class: an error a user can act on, with CloudStack's error codes."""

    errorcode = 530
    cserrorcode: int | None = 9999

    def __init__(self, message: str, *, errorcode: int | None = None, cserrorcode: int | None = None):
        super().__init__(message)
        self.message = message
        if errorcode is not None:
            self.errorcode = errorcode
        if cserrorcode is not None:
            self.cserrorcode = cserrorcode


class Unauthorized(ApiError):
    errorcode = 401


class MethodNotAllowed(ApiError):
    errorcode = 405


class MalformedParameter(ApiError):
    errorcode = 430


class ParamError(ApiError):
    """A missing or invalid parameter (ServerApiException PARAM_ERROR)."""

    errorcode = 431


class InvalidParameterValue(ParamError):
    """InvalidParameterValueException: a value that is wrong for the operation."""

    cserrorcode = 4350


class UnsupportedAction(ApiError):
    errorcode = 432


class InternalError(ApiError):
    errorcode = 530
    cserrorcode = 4250


class PermissionDenied(ApiError):
    errorcode = 531
    cserrorcode = 4365


class AccountError(ApiError):
    errorcode = 531
    cserrorcode = None


class ResourceLimitExceeded(ApiError):
    errorcode = 532
    cserrorcode = 4280


class InsufficientCapacity(ApiError):
    errorcode = 533
    cserrorcode = 4325


class ResourceUnavailable(ApiError):
    errorcode = 534
    cserrorcode = 4380


class ResourceAllocationError(ApiError):
    errorcode = 535
    cserrorcode = 4370


class ResourceInUse(ApiError):
    errorcode = 536
    cserrorcode = 4375


class ConcurrentOperation(ApiError):
    """Two operations raced for one object; CloudStack answers 530 with cserrorcode 4300."""

    errorcode = 530
    cserrorcode = 4300


class RateLimited(ApiError):
    errorcode = 429
    cserrorcode = 4545
