"""What every request body shares: ids that fit ``bigint``, values Postgres can store.

Checked at the edge so that bad input is a 422 naming the problem, never a
database error (a 500) halfway through a request, or, worse, a row stored and
then a response that cannot be rendered.
"""

import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_ROW_ID = 2**63 - 1
"""The largest ``bigint``: every id in the schema is one."""

RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
"""The id of a row (room, persona, document, message)."""

MAX_NESTING = 32
"""How deep objects and lists may nest in a body (free-form ``settings``)."""

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""NUL, and surrogates: JSON decodes a valid ``\\ud83d\\ude00`` pair into one
character, so any surrogate left in a string is unpaired; ``text`` and
``jsonb`` hold neither."""

STORABLE_TEXT_PATTERN = r"^[^\u0000\uD800-\uDFFF]*$"
"""The JSON-schema ``pattern`` of the text :data:`_UNSTORABLE` accepts (published
only: the model validator below is what refuses)."""

UNSTORABLE_TEXT = "text may not contain NUL characters or unpaired surrogates"
NOT_FINITE = "numbers must be finite (no NaN or Infinity)"
TOO_DEEP = f"objects and lists may nest at most {MAX_NESTING} levels"


def unstorable_reason(value: object) -> str | None:
    """Why a decoded JSON value cannot be stored (and echoed), or None.

    Walks nested objects and lists without recursion, so a deeply nested body
    cannot exhaust the stack.
    """
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        reason = _reason(item, depth)
        if reason is not None:
            return reason
        pending.extend((child, depth + 1) for child in _children(item))
    return None


def _reason(item: object, depth: int) -> str | None:
    if depth > MAX_NESTING:
        return TOO_DEEP
    if isinstance(item, str) and _UNSTORABLE.search(item):
        return UNSTORABLE_TEXT
    if isinstance(item, float) and not math.isfinite(item):
        return NOT_FINITE
    return None


def _children(value: object) -> list[object]:
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    if isinstance(value, list):
        return value
    return []


def publish_storable_text(schema: dict[str, Any]) -> None:
    """Write the NUL and surrogate rule into a request model's JSON schema.

    Free text gets :data:`STORABLE_TEXT_PATTERN`; a free-form object gets it as
    ``propertyNames`` and says in its description that its strings follow it.
    """
    pending = [schema]
    while pending:
        node = pending.pop()
        _publish_on(node)
        pending.extend(_subschemas(node))


def _publish_on(node: dict[str, Any]) -> None:
    constrained = {"format", "pattern", "enum", "const"} & node.keys()
    if node.get("type") == "string" and not constrained:
        node["pattern"] = STORABLE_TEXT_PATTERN
    if node.get("type") == "object" and node.get("additionalProperties") is True:
        node["propertyNames"] = {"pattern": STORABLE_TEXT_PATTERN}
        node["description"] = f"Free-form JSON; {UNSTORABLE_TEXT}."


def _subschemas(node: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[Any] = list(node.get("properties", {}).values())
    for keyword in ("anyOf", "oneOf", "allOf", "prefixItems"):
        found.extend(node.get(keyword, []))
    found.extend(node.get(keyword) for keyword in ("items", "additionalProperties"))
    return [child for child in found if isinstance(child, dict)]


class RequestModel(BaseModel):
    """The base of request bodies: refuses what Postgres cannot store (422).

    That is text with NUL or unpaired surrogates, NaN and infinite numbers
    (which Python's JSON reader accepts), and nesting past :data:`MAX_NESTING`.
    The JSON schema states the text rule (:func:`publish_storable_text`).
    """

    model_config = ConfigDict(json_schema_extra=publish_storable_text)

    @model_validator(mode="before")
    @classmethod
    def _only_storable_values(cls, data: Any) -> Any:
        reason = unstorable_reason(data)
        if reason is not None:
            raise ValueError(reason)
        return data
