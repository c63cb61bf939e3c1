"""When the room's persona answers a person's message.

The rule, as the API documents it: the persona answers a message that
mentions it by name, ``@`` followed by the persona's name, case-insensitive,
not inside a word (``@Ada,`` and ``hi @ada`` call Ada; ``mail@ada`` and
``@Adam`` do not). A room whose ``ai_replies`` is ``"always"`` gets an answer
to every message. A room without a setting answers every message while it has
one member and only mentions once it has more.
"""

import re
from typing import Literal

AIReplies = Literal["mention", "always"]


def mentions(message: str, persona_name: str) -> bool:
    """Whether ``message`` calls the persona as ``@Name`` (see the module doc)."""
    name = r"\s+".join(re.escape(word) for word in persona_name.split())
    if not name:
        return False
    pattern = rf"(?<![\w@])@{name}(?!\w)"
    return re.search(pattern, message, re.IGNORECASE) is not None


def ai_replies_of(setting: str | None, member_count: int) -> AIReplies:
    """The room's effective ``ai_replies``: its setting, else by its members."""
    if setting == "always" or (setting is None and member_count <= 1):
        return "always"
    return "mention"


def persona_answers(message: str, persona_name: str, replies: AIReplies) -> bool:
    """Whether the persona answers ``message`` in a room with ``replies``."""
    return replies == "always" or mentions(message, persona_name)
