"""env/backend/example.env and local.env agree with src/settings.py.

example.env documents every setting with its default: loading it must change
nothing, and a setting added to (or removed from) ``Settings`` without the
file following makes these tests fail.
"""

import pytest
from pydantic import SecretStr

from src.settings import Settings
from tests.ship.files import (
    EXAMPLE_ENV,
    LOCAL_ENV,
    commented_env_names,
    read_env_file,
)

SETTING_NAMES = {name.upper() for name in Settings.model_fields}
SECRET_NAMES = {
    name.upper()
    for name, field in Settings.model_fields.items()
    if SecretStr in getattr(field.annotation, "__args__", (field.annotation,))
}


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting comes from the test process's own environment."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)


def example_names_in_order() -> list[str]:
    lines = EXAMPLE_ENV.read_text(encoding="utf-8").splitlines()
    return [
        line.partition("=")[0]
        for line in lines
        if line.strip() and not line.startswith("#")
    ]


def test_example_env_lists_every_setting_exactly_once() -> None:
    names = example_names_in_order()
    assert len(names) == len(set(names)), "a setting is listed twice"
    missing = SETTING_NAMES - set(names)
    unknown = set(names) - SETTING_NAMES
    assert not missing, f"add to env/backend/example.env: {sorted(missing)}"
    assert not unknown, f"not a setting of src/settings.py: {sorted(unknown)}"


def test_every_example_setting_comes_with_a_comment() -> None:
    """A comment right above each setting, or above a pair of related ones."""
    lines = EXAMPLE_ENV.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if not line or line.startswith("#"):
            continue
        above = lines[max(index - 2, 0) : index]
        explained = above[-1:] and above[-1].startswith("#")
        paired = len(above) == 2 and above[0].startswith("#") and "=" in above[1]
        assert explained or paired, f"explain {line}"


def test_example_env_shows_the_defaults(clean_environment: None) -> None:
    assert Settings(_env_file=EXAMPLE_ENV) == Settings(_env_file=None)


def test_example_env_holds_no_secret() -> None:
    assert {"OPENAI_API_KEY", "SUPABASE_JWT_SECRET"} <= SECRET_NAMES
    values = read_env_file(EXAMPLE_ENV)
    assert {name: values[name] for name in SECRET_NAMES} == dict.fromkeys(
        SECRET_NAMES, ""
    )


def test_local_env_uses_known_settings_only() -> None:
    names = set(read_env_file(LOCAL_ENV)) | commented_env_names(LOCAL_ENV)
    assert names, "local.env sets the offline development defaults"
    unknown = names - SETTING_NAMES
    assert not unknown, f"not a setting of src/settings.py: {sorted(unknown)}"


def test_local_env_is_an_offline_development_configuration(
    clean_environment: None,
) -> None:
    settings = Settings(_env_file=LOCAL_ENV)
    assert settings.environment == "development"
    assert settings.database_url is None, "the embedded database"
    assert settings.openai_api_key is None, "the offline providers"
    assert settings.supabase_url is None, "no network for tokens"
