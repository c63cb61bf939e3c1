"""docker-compose.yml, checked statically (no Docker engine runs here).

The file must parse, every file it names must exist, the services must start in
the right order (healthchecks behind every ``service_healthy``), and the values
that have to agree across files must agree: the database URL and the db
service, the Dockerfile targets, the Postgres version and supabase/config.toml.
"""

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped]

from src.infra.migrations import COMPAT_FILE
from tests.ship.files import COMPOSE_FILE, REPO_ROOT, read_env_file, read_stages

DEPENDS_ON_CONDITIONS = {
    "service_started",
    "service_healthy",
    "service_completed_successfully",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert set(found) == {"db", "migrate", "api"}
    return {name: dict(service) for name, service in found.items()}


def host_path(source: str) -> Path:
    """A relative compose path, from the compose file's folder."""
    return (COMPOSE_FILE.parent / source).resolve()


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of the service's bind mounts."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def test_builds_name_a_context_a_dockerfile_and_one_of_its_stages(
    services: dict[str, dict[str, Any]],
) -> None:
    _, stages = read_stages()
    built = {name: s["build"] for name, s in services.items() if "build" in s}
    assert set(built) == {"migrate", "api"}
    for build in built.values():
        context = host_path(build["context"])
        assert context == REPO_ROOT
        assert (context / build["dockerfile"]).is_file()
        assert build["target"] in {stage.name for stage in stages}
    assert services["migrate"]["image"] == services["api"]["image"]


def test_every_mounted_file_and_env_file_exists(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for source, _ in bind_mounts(service):
            assert host_path(source).exists(), f"{name}: {source}"
        for env_file in service.get("env_file", []):
            assert host_path(env_file).is_file(), f"{name}: {env_file}"


def test_the_db_is_made_supabase_like_on_first_start(
    services: dict[str, dict[str, Any]],
) -> None:
    init_scripts = [
        (host_path(source), target)
        for source, target in bind_mounts(services["db"])
        if target.startswith("/docker-entrypoint-initdb.d/")
    ]
    assert init_scripts == [
        (COMPAT_FILE.resolve(), "/docker-entrypoint-initdb.d/00_supabase_compat.sql")
    ]
    named = [str(v).split(":")[0] for v in services["db"]["volumes"]]
    assert "db-data" in named


def test_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    used = {
        str(volume).split(":")[0]
        for service in services.values()
        for volume in service.get("volumes", [])
        if not str(volume).startswith((".", "/"))
    }
    assert used == set(compose["volumes"])


def test_postgres_has_pgvector_and_the_supabase_major_version(
    services: dict[str, dict[str, Any]],
) -> None:
    image = services["db"]["image"]
    match = re.fullmatch(r"pgvector/pgvector:(\d+)\.(\d+)\.(\d+)-pg(\d+)", image)
    assert match is not None, f"pin the pgvector release: {image}"
    assert (int(match[1]), int(match[2])) >= (0, 8), "hnsw.iterative_scan"
    config = tomllib.loads((REPO_ROOT / "supabase/config.toml").read_text())
    assert int(match[4]) == config["db"]["major_version"]


def test_start_order_waits_for_health_and_for_migrations(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} -> {dependency}"
            assert condition["condition"] in DEPENDS_ON_CONDITIONS
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], dependency
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["api"]["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }


def test_long_running_services_have_healthchecks(
    services: dict[str, dict[str, Any]],
) -> None:
    db_check = services["db"]["healthcheck"]["test"]
    assert db_check[:2] == ["CMD", "pg_isready"]
    assert "--host=127.0.0.1" in db_check, "TCP: not ready while init scripts run"
    api_check = services["api"]["healthcheck"]["test"]
    assert api_check[0] == "CMD"
    assert "http://127.0.0.1:8000/health'" in api_check[-1]
    assert "127.0.0.1:8000:8000" in services["api"]["ports"]
    assert "healthcheck" not in services["migrate"], "a one-shot job"
    assert services["migrate"]["restart"] == "no"


def test_migrate_and_api_use_the_db_service_as_its_credentials_say(
    services: dict[str, dict[str, Any]],
) -> None:
    db_env = services["db"]["environment"]
    for name in ("migrate", "api"):
        url = urlsplit(services[name]["environment"]["DATABASE_URL"])
        assert url.hostname == "db", name
        assert url.port == 5432
        assert url.username == db_env["POSTGRES_USER"]
        assert url.password == db_env["POSTGRES_PASSWORD"]
        assert url.path == f"/{db_env['POSTGRES_DB']}"
    assert services["migrate"]["command"] == ["python", "-m", "src.cli.db", "migrate"]


def test_the_api_reads_the_offline_env_file_which_compose_can_parse(
    services: dict[str, dict[str, Any]],
) -> None:
    (env_file,) = services["api"]["env_file"]
    values = read_env_file(host_path(env_file))
    # Compose would interpolate `$` and keep quotes that the app must not see.
    assert not [v for v in values.values() if "$" in v]
    assert not [v for v in values.values() if v[:1] in {"'", '"'}]


def test_the_dev_image_serves_on_the_port_compose_publishes() -> None:
    _, stages = read_stages()
    (dev,) = [stage for stage in stages if stage.name == "dev"]
    command = dev.last("CMD")
    assert command is not None
    served = command.exec_form()
    assert served is not None
    assert served[served.index("--host") + 1] == "0.0.0.0"  # noqa: S104
    assert served[served.index("--port") + 1] == "8000"
