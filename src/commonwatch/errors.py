"""Errors services raise; the web layer turns them into status codes and messages next to fields."""

from __future__ import annotations

from dataclasses import dataclass


class CommonwatchError(Exception):
    status_code = 400


class NotFound(CommonwatchError):
    """Not there, or not visible to the principal: the two look the same from outside."""

    status_code = 404

    def __init__(self, what: str = "not found"):
        super().__init__(what)


class Forbidden(CommonwatchError):
    status_code = 403

    def __init__(self, what: str = "not allowed"):
        super().__init__(what)


class Conflict(CommonwatchError):
    status_code = 409


@dataclass
class FieldError:
    field: str
    reason: str


class Invalid(CommonwatchError):
    """Bad input: one or more fields, each with the reason (HTTP 422)."""

    status_code = 422

    def __init__(self, errors: list[FieldError] | str, reason: str | None = None):
        if isinstance(errors, str):
            errors = [FieldError(errors, reason or "invalid")]
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in errors))

    def as_detail(self, location: str = "body") -> list[dict]:
        """The shape FastAPI uses for 422 bodies, so clients see one format."""
        return [
            {"loc": [location, *e.field.split(".")], "msg": e.reason, "type": "value_error"}
            for e in self.errors
        ]

    def by_field(self) -> dict[str, str]:
        return {e.field: e.reason for e in self.errors}
