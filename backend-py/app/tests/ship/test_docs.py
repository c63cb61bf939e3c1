"""README.md and CLAUDE.md say what the code does.

The API table is the app's OpenAPI schema, the configuration table is
``Settings`` (names and defaults), every ``make`` target and file path they
name exists, and every code block says what it is (``bash`` commands are
accounted for by test_readme.py). Benchmark figures live in ``bench/results/``,
which the README links, and both documents stay short.
"""

import re
from pathlib import Path

import pytest

from src.app import create_app
from src.settings import Settings
from tests.ship.files import (
    APP_DIR,
    CLAUDE_MD,
    MAKEFILE,
    README,
    REPO_ROOT,
    code_blocks,
    table_rows,
    unquote,
)

DOCS = (README, CLAUDE_MD)
BLOCK_LANGUAGES = {"bash", "text", "dotenv", "python", "sql"}
BENCH_RESULTS = (
    "load.md",
    "streaming.md",
    "rooms.md",
    "knowledge.md",
    "retrieval.md",
    "ingestion.md",
)
DOC_LINES = ((README, 349), (CLAUDE_MD, 149))
"""The README is for who runs and calls the service, CLAUDE.md for the code's rules."""
RUNTIME_PATHS = (".data", ".tools", "backend-py/app/.venv")
SETTING_NAMES = {name.upper() for name in Settings.model_fields}


def code_text(path: Path) -> str:
    """The inline code spans and code blocks of a Markdown file."""
    markdown = path.read_text(encoding="utf-8")
    spans = re.findall(r"`([^`\n]+)`", markdown)
    return "\n".join([*spans, *(block.text for block in code_blocks(markdown))])


def makefile_targets() -> set[str]:
    text = MAKEFILE.read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, flags=re.MULTILINE))


def test_the_api_table_lists_every_route_of_the_app() -> None:
    app = create_app(Settings(_env_file=None, environment="test", log_json=False))
    routes = {
        (method.upper(), path, "token" if operation.get("security") else "none")
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
    }
    rows = table_rows(README.read_text(encoding="utf-8"), "| Method | Path |")
    documented = [(row[0], unquote(row[1]), row[2]) for row in rows]
    assert len(documented) == len(set(documented)), "a route is listed twice"
    assert set(documented) == routes


def test_the_configuration_table_names_settings_and_their_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    defaults = Settings(_env_file=None)
    rows = table_rows(README.read_text(encoding="utf-8"), "| Variable | Default |")
    assert len(rows) >= 10
    for row in rows:
        name, default = unquote(row[0]), row[1]
        assert name in SETTING_NAMES, name
        field = name.lower()
        if default == "unset":
            assert getattr(defaults, field) is None, name
            continue
        with monkeypatch.context() as env:
            env.setenv(name, unquote(default))
            assert getattr(Settings(_env_file=None), field) == getattr(
                defaults, field
            ), name


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_env_snippets_use_known_settings(doc: Path) -> None:
    for block in code_blocks(doc.read_text(encoding="utf-8")):
        if block.language != "dotenv":
            continue
        names = re.findall(r"^([A-Z][A-Z0-9_]*)=", block.text, flags=re.MULTILINE)
        assert names
        assert set(names) <= SETTING_NAMES, set(names) - SETTING_NAMES


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_code_block_says_what_it_holds(doc: Path) -> None:
    for block in code_blocks(doc.read_text(encoding="utf-8")):
        assert block.language in BLOCK_LANGUAGES, block.text[:80]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_make_target_named_exists(doc: Path) -> None:
    named = set(re.findall(r"(?:^|[\s(])make ([a-z][a-z0-9-]*)", code_text(doc)))
    assert named
    assert named <= makefile_targets(), named - makefile_targets()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_file_path_named_exists(doc: Path) -> None:
    candidates = re.findall(r"`([\w./-]+/[\w.-]*)`", doc.read_text(encoding="utf-8"))
    checked = [
        path
        for path in candidates
        if not path.startswith(("/", *RUNTIME_PATHS))
        and ("." in path.rsplit("/", 1)[-1] or path.endswith("/"))
    ]
    assert len(checked) >= 5
    roots = (REPO_ROOT, APP_DIR, APP_DIR / "src")
    missing = [p for p in checked if not any((r / p).exists() for r in roots)]
    assert not missing


def test_the_readme_links_the_benchmark_results() -> None:
    readme = README.read_text(encoding="utf-8")
    for name in BENCH_RESULTS:
        assert (REPO_ROOT / "bench/results" / name).is_file(), name
        assert f"(bench/results/{name})" in readme, name


@pytest.mark.parametrize(
    ("doc", "most"), [pytest.param(*d, id=d[0].name) for d in DOC_LINES]
)
def test_documents_stay_short_enough_to_read(doc: Path, most: int) -> None:
    lines = doc.read_text(encoding="utf-8").count("\n")
    assert lines <= most, f"{doc.name}: move detail to docs/ or bench/results/"
