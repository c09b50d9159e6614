from __future__ import annotations

import re
from pathlib import Path

import pytest

from settings import load


def test_defaults_are_the_embedded_development_setup(tmp_path: Path) -> None:
    settings = load({}, env_file=str(tmp_path / "missing.env"))
    assert (settings.host, settings.port, settings.public_url) == ("127.0.0.1", 3000, "http://localhost:3000")
    assert settings.database_url is None and settings.ufs_storage == "data/ufs"
    assert settings.drs_host == "localhost:3000"


def test_environment_overrides_and_nextauth_secret_is_accepted(tmp_path: Path) -> None:
    env = {"PORT": "8080", "PUBLIC_URL": "https://files.example.org/", "NEXTAUTH_SECRET": "s", "MAX_UPLOAD_SIZE": "10"}
    settings = load(env, env_file=str(tmp_path / "missing.env"))
    assert settings.public_url == "https://files.example.org" and settings.drs_host == "files.example.org"
    assert settings.secret == "s" and settings.max_upload_size == 10
    assert load({**env, "SECRET": "t"}, env_file=str(tmp_path / "none")).secret == "t"


def test_dotenv_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=4000\nUFS_STORAGE=memory://\n")
    settings = load({"PORT": "5000"}, env_file=str(env_file))
    assert settings.port == 5000 and settings.ufs_storage == "memory://"
    assert settings.public_url == "http://localhost:5000"


@pytest.mark.parametrize(
    "env", [{"PUBLIC_URL": "ftp://x"}, {"PUBLIC_URL": "localhost"}, {"MAX_UPLOAD_SIZE": "0"}, {"PORT": "abc"}]
)
def test_bad_values_stop_start_up_with_a_message(env: dict, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        load(env, env_file=str(tmp_path / "none"))


AWS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"}
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "UI_REPLICAS", "WORKER_REPLICAS", "HTTP_PORT"}


def test_env_example_lists_every_setting_and_loads_as_is() -> None:
    root = Path(__file__).resolve().parent.parent
    read = set(re.findall(r'"([A-Z][A-Z0-9]*_[A-Z0-9_]+|[A-Z]{4,})"', (root / "settings.py").read_text()))
    listed = set(re.findall(r"^#? ?([A-Z_]+)=", (root / ".env.example").read_text(), re.MULTILINE))
    assert read | AWS | COMPOSE_ONLY == listed
    load({}, env_file=str(root / ".env.example"))
