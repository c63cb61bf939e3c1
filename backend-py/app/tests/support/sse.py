"""Reading server-sent events as the tests receive them."""

import json
from typing import Any


def sse_events(lines: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of server-sent-event lines."""
    events: list[tuple[str, dict[str, Any]]] = []
    name = ""
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((name, json.loads(line.removeprefix("data: "))))
    return events
