"""The labelled cases of ``make eval``: single questions and two-turn conversations."""

from typing import NamedTuple

Question = tuple[str, tuple[str, ...]]
"""A question and the pages (file stems) that answer it."""


class Conversation(NamedTuple):
    """A first question, then a follow-up that leans on it.

    Attributes:
        first: The room's first question.
        first_pages: The pages that answer it.
        follow_up: The next question, with a pronoun or an ellipsis.
        pages: The pages that answer the follow-up.
        standalone: What a good model rewrites the follow-up into (the
            scripted model's answer).
    """

    first: str
    first_pages: tuple[str, ...]
    follow_up: str
    pages: tuple[str, ...]
    standalone: str
