"""Room tests use the chat tests' fixtures: personas, a second user, a scripted LLM."""

from tests.chat.conftest import (  # noqa: F401 - fixtures used by name
    admin_persona,
    other_client,
    other_user,
    scripted_llm,
)
