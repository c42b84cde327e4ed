"""Base classes for vendor models: lenient-in, strict-out, and never a silent misspelt read."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator


class InboundModel(BaseModel):
    """A shape the vendor sends us.

    Unknown fields are ignored (real payloads carry many more than we read); instances are
    frozen; reading an attribute that is not declared raises AttributeError, so a misspelt
    field fails the test instead of reading as None. Numbers arriving where text is declared
    (ids, zip codes) are kept as text.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _null_lists_are_empty(cls, data: Any) -> Any:
        # Vendors send `null` for an empty list as often as `[]`; both mean "none".
        if isinstance(data, dict):
            nulls = [
                n for n, f in cls.model_fields.items() if f.default_factory is list and n in data and data[n] is None
            ]
            if nulls:
                data = {**data, **{name: [] for name in nulls}}
        return data


class OutboundModel(BaseModel):
    """A request body we send: unknown fields are an error, so a typo cannot reach the vendor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json_dict(self) -> dict[str, Any]:
        """Return the JSON-ready body with unset (None) fields left out."""
        return self.model_dump(mode="json", exclude_none=True)


def describe_validation_error(exc: ValidationError) -> str:
    """Name the first failing field and why, without echoing its value (it may be personal)."""
    first = exc.errors(include_url=False, include_input=False)[0]
    location = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{location}: {first['msg']}"
