"""Settings, read once from the environment and an optional `.env` file (see .env.example)."""

from __future__ import annotations

import os
import ssl
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
    drs_auth: str = "public"  # "token": objects readable by their owner and the service identity only
    drs_url_expiry: int = 3600
    forwarded_allow_ips: str = "127.0.0.1"
    run_jobs: bool | None = None  # None: in-process job loops only in memory mode
    n_workers: int = 2
    job_heartbeat: float = 5.0
    job_stale: float = 30.0
    job_poll: float = 5.0
    job_max_attempts: int = 5
    job_backoff: float = 2.0
    job_retention: float = 7 * 86400.0
    shutdown_grace: float = 20.0
    gc_interval: float = 3600.0
    gc_grace: float = 86400.0
    sweep_interval: float = 3600.0
    temp_max_age: float = 86400.0
    scrub_interval: float = 3600.0
    scrub_max_age: float = 30 * 86400.0
    scrub_rate: int = 50_000_000
    scrub_batch: int = 100
    stats_interval: float = 300.0
    import_mode: str = "copy"
    import_allow: str = ""
    import_max_size: int | None = None  # None: MAX_UPLOAD_SIZE
    import_timeout: float = 3600.0
    log_level: str = "info"
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    @property
    def drs_host(self) -> str:
        """The `host[:port]` of `drs://` links: clients use http when a port is present, else https."""
        return urlsplit(self.public_url).netloc


def load(environ: Mapping[str, str] | None = None, env_file: str = ".env") -> Settings:
    config = Config(env_file if os.path.isfile(env_file) else None, environ=os.environ if environ is None else environ)
    port = config("PORT", cast=int, default=3000)
    ssl_certfile = config("SSL_CERTFILE", default="") or None
    ssl_keyfile = config("SSL_KEYFILE", default="") or None
    check_tls(ssl_certfile, ssl_keyfile)
    scheme = "https" if ssl_certfile else "http"
    public_url = config("PUBLIC_URL", default="") or f"{scheme}://localhost:{port}"
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"PUBLIC_URL must be an http(s) URL with a host, got {public_url!r}")
    max_upload_size = config("MAX_UPLOAD_SIZE", cast=int, default=Settings.max_upload_size)
    if max_upload_size < 1:
        raise ValueError("MAX_UPLOAD_SIZE must be a positive number of bytes")
    # PWB deployments name the service secret NEXTAUTH_SECRET; either works.
    secret = config("SECRET", default="") or config("NEXTAUTH_SECRET", default="") or None
    drs_auth = config("DRS_AUTH", default=Settings.drs_auth)
    if drs_auth not in ("public", "token"):
        raise ValueError(f"DRS_AUTH must be public or token, got {drs_auth!r}")
    if drs_auth == "token" and not secret:
        raise ValueError("DRS_AUTH=token needs SECRET: it signs the access URLs")
    drs_version = config("DRS_VERSION", default=Settings.drs_version)
    if drs_version not in DRS_VERSIONS:
        raise ValueError(f"DRS_VERSION must be one of {', '.join(DRS_VERSIONS)}, got {drs_version!r}")
    return Settings(
        host=config("HOST", default=Settings.host),
        port=port,
        public_url=public_url.rstrip("/"),
        database_url=config("DATABASE_URL", default="") or None,
        ufs_storage=config("UFS_STORAGE", default="") or Settings.ufs_storage,
        secret=secret,
        dev_token=config("DEV_TOKEN", default="") or None,
        max_upload_size=max_upload_size,
        ufs_fsync=config("UFS_FSYNC", cast=bool, default=True),
        ufs_presign=config("UFS_PRESIGN", cast=bool, default=False),
        ufs_presign_expiry=config("UFS_PRESIGN_EXPIRY", cast=int, default=Settings.ufs_presign_expiry),
        drs_max_bulk=config("DRS_MAX_BULK", cast=int, default=Settings.drs_max_bulk),
        drs_version=drs_version,
        drs_auth=drs_auth,
        drs_url_expiry=config("DRS_URL_EXPIRY", cast=int, default=Settings.drs_url_expiry),
        forwarded_allow_ips=config("FORWARDED_ALLOW_IPS", default=Settings.forwarded_allow_ips),
        **job_settings(config),
        log_level=config("LOG_LEVEL", default=Settings.log_level),
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )


def check_tls(certfile: str | None, keyfile: str | None) -> None:
    """Loads the certificate and key once, so a bad pair stops start-up with a message rather than a traceback."""
    if keyfile and not certfile:
        raise ValueError("SSL_KEYFILE is set but SSL_CERTFILE is not")
    if certfile:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
        except (OSError, ssl.SSLError) as error:
            raise ValueError(f"SSL_CERTFILE/SSL_KEYFILE cannot be loaded: {error}") from None


def job_settings(config: Config) -> dict[str, object]:
    """Workers, imports, garbage collection and the scrub."""
    run_jobs = config("RUN_JOBS", default="auto").lower()
    if run_jobs not in ("auto", "true", "false"):
        raise ValueError("RUN_JOBS must be auto, true or false")
    import_mode = config("IMPORT_MODE", default=Settings.import_mode)
    if import_mode not in ("copy", "reference"):
        raise ValueError("IMPORT_MODE must be copy or reference")
    seconds = {
        "job_heartbeat": "JOB_HEARTBEAT",
        "job_stale": "JOB_STALE",
        "job_poll": "JOB_POLL",
        "job_backoff": "JOB_BACKOFF",
        "job_retention": "JOB_RETENTION",
        "shutdown_grace": "WORKER_SHUTDOWN_GRACE",
        "gc_interval": "GC_INTERVAL",
        "gc_grace": "GC_GRACE",
        "sweep_interval": "SWEEP_INTERVAL",
        "temp_max_age": "TEMP_MAX_AGE",
        "scrub_interval": "SCRUB_INTERVAL",
        "scrub_max_age": "SCRUB_MAX_AGE",
        "import_timeout": "IMPORT_TIMEOUT",
        "stats_interval": "STATS_INTERVAL",
    }
    values: dict[str, object] = {
        field: config(name, cast=float, default=getattr(Settings, field)) for field, name in seconds.items()
    }
    if any(value <= 0 for value in values.values()):  # type: ignore[operator]
        raise ValueError(f"{', '.join(seconds.values())} must be positive numbers of seconds")
    import_max_size = config("IMPORT_MAX_SIZE", default="")
    return {
        **values,
        "run_jobs": None if run_jobs == "auto" else run_jobs == "true",
        "n_workers": config("N_WORKERS", cast=int, default=Settings.n_workers),
        "job_max_attempts": config("JOB_MAX_ATTEMPTS", cast=int, default=Settings.job_max_attempts),
        "scrub_rate": config("SCRUB_RATE", cast=int, default=Settings.scrub_rate),
        "scrub_batch": config("SCRUB_BATCH", cast=int, default=Settings.scrub_batch),
        "import_mode": import_mode,
        "import_allow": config("IMPORT_ALLOW", default=""),
        "import_max_size": int(import_max_size) if import_max_size else None,
    }
