"""Settings, read once from the environment and an optional `.env` file (see .env.example)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.config import Config

DRS_VERSIONS = ("1.2.0", "1.5.0")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 3000
    public_url: str = "http://localhost:3000"
    database_url: str | None = None
    ufs_storage: str = "data/ufs"
    secret: str | None = None
    dev_token: str | None = None
    max_upload_size: int = 10 * 1024**3
    ufs_fsync: bool = True
    ufs_presign: bool = False
    ufs_presign_expiry: int = 3600
    drs_max_bulk: int = 1000
    drs_version: str = "1.5.0"
    log_level: str = "info"

    @property
    def drs_host(self) -> str:
        """The `host[:port]` of `drs://` links: clients use http when a port is present, else https."""
        return urlsplit(self.public_url).netloc


def load(environ: Mapping[str, str] | None = None, env_file: str = ".env") -> Settings:
    config = Config(env_file if os.path.isfile(env_file) else None, environ=os.environ if environ is None else environ)
    port = config("PORT", cast=int, default=3000)
    public_url = config("PUBLIC_URL", default="") or f"http://localhost:{port}"
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"PUBLIC_URL must be an http(s) URL with a host, got {public_url!r}")
    max_upload_size = config("MAX_UPLOAD_SIZE", cast=int, default=Settings.max_upload_size)
    if max_upload_size < 1:
        raise ValueError("MAX_UPLOAD_SIZE must be a positive number of bytes")
    drs_version = config("DRS_VERSION", default=Settings.drs_version)
    if drs_version not in DRS_VERSIONS:
        raise ValueError(f"DRS_VERSION must be one of {', '.join(DRS_VERSIONS)}, got {drs_version!r}")
    return Settings(
        host=config("HOST", default=Settings.host),
        port=port,
        public_url=public_url.rstrip("/"),
        database_url=config("DATABASE_URL", default="") or None,
        ufs_storage=config("UFS_STORAGE", default="") or Settings.ufs_storage,
        # PWB deployments name the service secret NEXTAUTH_SECRET; either works.
        secret=config("SECRET", default="") or config("NEXTAUTH_SECRET", default="") or None,
        dev_token=config("DEV_TOKEN", default="") or None,
        max_upload_size=max_upload_size,
        ufs_fsync=config("UFS_FSYNC", cast=bool, default=True),
        ufs_presign=config("UFS_PRESIGN", cast=bool, default=False),
        ufs_presign_expiry=config("UFS_PRESIGN_EXPIRY", cast=int, default=Settings.ufs_presign_expiry),
        drs_max_bulk=config("DRS_MAX_BULK", cast=int, default=Settings.drs_max_bulk),
        drs_version=drs_version,
        log_level=config("LOG_LEVEL", default=Settings.log_level),
    )
