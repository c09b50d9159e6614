"""UFS_STORAGE → a storage backend. Accepts a path, a URL (file://, memory://, s3://bucket/prefix, other
fsspec URLs such as gs:// or az://) or PWB's JSON form, which is mapped through an allowlist: a class named
in configuration is never imported."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlsplit

from storage import LocalStorage, MemoryStorage, Storage

# objectstore (aiobotocore, fsspec) is imported only for remote storage: it costs ~20 MiB and 0.2 s at start.


class StorageConfigError(ValueError):
    pass


def open_storage(spec: str, fsync: bool = True) -> Storage:
    spec = spec.strip()
    if spec.startswith("{"):
        try:
            config = json.loads(spec)
        except json.JSONDecodeError as error:
            raise StorageConfigError(f"UFS_STORAGE is not valid JSON: {error}") from error
        return from_pwb(config, "", fsync)
    parts = urlsplit(spec)
    if parts.scheme == "memory":
        return MemoryStorage()
    if parts.scheme == "file":
        return LocalStorage(unquote(parts.path), fsync=fsync)
    if parts.scheme == "" or len(parts.scheme) == 1:  # a plain path (or a Windows drive letter)
        return LocalStorage(spec, fsync=fsync)
    from objectstore import FsspecStorage, S3Options, S3Storage

    if parts.scheme in ("s3", "s3a"):
        if not parts.netloc:
            raise StorageConfigError(f"UFS_STORAGE {spec!r}: name a bucket, as in s3://bucket/prefix")
        return S3Storage(S3Options(bucket=parts.netloc, prefix=unquote(parts.path)))
    try:
        import fsspec.core

        fs, root = fsspec.core.url_to_fs(spec)
    except (ImportError, ValueError) as error:
        raise StorageConfigError(f"UFS_STORAGE {spec!r}: unsupported storage ({error})") from error
    return FsspecStorage(fs, root)


# PWB's ufs classes and the keys each takes: (required, optional).
KEYS: dict[str, tuple[set[str], set[str]]] = {
    "ufs.impl.local.Local": (set(), set()),
    "ufs.impl.memory.Memory": (set(), set()),
    "ufs.impl.prefix.Prefix": ({"ufs", "prefix"}, set()),
    "ufs.impl.s3.S3": (set(), {"anon", "access_key", "secret_access_key", "endpoint_url", "ttl"}),
    "ufs.impl.s3fs.S3": (set(), {"anon", "access_key", "secret_access_key", "endpoint_url", "ttl"}),
    "ufs.impl.minio.Minio": ({"netloc", "access_key", "secret_key"}, {"secure"}),
}


def checked(config: Any, where: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(config, dict) or not isinstance(config.get("cls"), str):
        raise StorageConfigError(f'UFS_STORAGE{where}: expected an object with a "cls" string')
    cls = config["cls"]
    if cls not in KEYS:
        raise StorageConfigError(f"UFS_STORAGE{where}: unknown cls {cls!r} (supported: {', '.join(sorted(KEYS))})")
    required, optional = KEYS[cls]
    keys = set(config) - {"cls"}
    if missing := required - keys:
        raise StorageConfigError(f"UFS_STORAGE{where}: {cls} needs {', '.join(sorted(missing))}")
    if unknown := keys - required - optional:
        raise StorageConfigError(f"UFS_STORAGE{where}: {cls} does not take {', '.join(sorted(unknown))}")
    for key in keys - {"ufs", "anon", "secure", "ttl"}:
        if not isinstance(config[key], str):
            raise StorageConfigError(f"UFS_STORAGE{where}: {cls} {key} must be a string")
    for key in keys & {"anon", "secure"}:
        if not isinstance(config[key], bool):
            raise StorageConfigError(f"UFS_STORAGE{where}: {cls} {key} must be true or false")
    return cls, config


def from_pwb(config: Any, prefix: str, fsync: bool, where: str = "") -> Storage:
    """`prefix` is what enclosing Prefix classes put in front of every path, innermost first."""
    cls, config = checked(config, where)
    if cls == "ufs.impl.prefix.Prefix":
        return from_pwb(config["ufs"], config["prefix"].rstrip("/") + prefix, fsync, f"{where}.ufs")
    if cls == "ufs.impl.memory.Memory":
        return MemoryStorage()
    if cls == "ufs.impl.local.Local":
        if not prefix.strip("/"):
            raise StorageConfigError(f"UFS_STORAGE{where}: wrap ufs.impl.local.Local in a Prefix naming the folder")
        return LocalStorage(prefix, fsync=fsync)
    from objectstore import S3Options, S3Storage

    bucket, _, path = prefix.strip("/").partition("/")
    if not bucket:
        raise StorageConfigError(f"UFS_STORAGE{where}: wrap {cls} in a Prefix whose first path part is the bucket")
    if cls == "ufs.impl.minio.Minio":
        scheme = "https" if config.get("secure", True) else "http"
        options = S3Options(bucket, path, f"{scheme}://{config['netloc']}", config["access_key"], config["secret_key"])
    else:
        options = S3Options(
            bucket,
            path,
            endpoint_url=config.get("endpoint_url"),
            access_key=config.get("access_key"),
            secret_key=config.get("secret_access_key"),
            anon=config.get("anon", False),
        )
    return S3Storage(options)
