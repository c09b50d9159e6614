"""UFS_STORAGE values: paths, URLs and PWB's JSON form (through an allowlist), with clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import s3
import storage
from objectstore import S3Storage
from ufsconfig import StorageConfigError, open_storage

pytestmark = pytest.mark.anyio


def pwb(inner: dict, prefix: str) -> str:
    return json.dumps({"cls": "ufs.impl.prefix.Prefix", "ufs": inner, "prefix": prefix})


def test_paths_and_urls(tmp_path: Path) -> None:
    assert isinstance(open_storage("memory://"), storage.MemoryStorage)
    local = open_storage(f"file://{tmp_path}/a")
    assert isinstance(local, storage.LocalStorage) and local.root == tmp_path / "a"
    assert open_storage(str(tmp_path / "b")).root == tmp_path / "b"  # type: ignore[attr-defined]
    bucket = open_storage("s3://bucket/some/prefix/")
    assert isinstance(bucket, S3Storage) and (bucket.bucket, bucket.prefix) == ("bucket", "some/prefix")


def test_other_fsspec_urls_need_their_package_and_say_so() -> None:
    # gcsfs and adlfs are not installed here: the message tells the operator what is missing.
    with pytest.raises(StorageConfigError, match="gcsfs"):
        open_storage("gs://bucket/ufs")


@pytest.mark.parametrize("spec", ["s3://", "nosuchproto://x/y"])
def test_unusable_urls_are_refused(spec: str) -> None:
    with pytest.raises(StorageConfigError):
        open_storage(spec)


def test_pwb_json_forms_map_to_backends(tmp_path: Path) -> None:
    local = open_storage(pwb({"cls": "ufs.impl.local.Local"}, str(tmp_path / "ufs")))
    assert isinstance(local, storage.LocalStorage) and local.root == tmp_path / "ufs"
    assert isinstance(open_storage(json.dumps({"cls": "ufs.impl.memory.Memory"})), storage.MemoryStorage)
    for cls in ("ufs.impl.s3.S3", "ufs.impl.s3fs.S3"):
        inner = {"cls": cls, "access_key": "a", "secret_access_key": "b", "endpoint_url": "http://s3:9000", "ttl": 60}
        store = open_storage(pwb(inner, "/bucket/deep/path"))
        assert isinstance(store, S3Storage)
        assert (store.bucket, store.prefix, store.options.endpoint_url) == ("bucket", "deep/path", "http://s3:9000")
        assert (store.options.access_key, store.options.secret_key) == ("a", "b")
    minio = {
        "cls": "ufs.impl.minio.Minio",
        "netloc": "minio:9000",
        "access_key": "k",
        "secret_key": "s",
        "secure": False,
    }
    store = open_storage(pwb(minio, "/data"))
    assert isinstance(store, S3Storage) and store.options.endpoint_url == "http://minio:9000"
    assert store.bucket == "data" and store.prefix == ""
    nested = json.dumps({"cls": "ufs.impl.prefix.Prefix", "prefix": "/inner", "ufs": json.loads(pwb(minio, "/bkt"))})
    store = open_storage(nested)
    assert (store.bucket, store.prefix) == ("bkt", "inner")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('{"cls": "os.system"}', "unknown cls 'os.system'"),
        ('{"cls": "ufs.impl.prefix.Prefix", "prefix": "/x"}', "needs ufs"),
        (pwb({"cls": "ufs.impl.minio.Minio", "netloc": "m:9000", "access_key": "k"}, "/b"), "needs secret_key"),
        (pwb({"cls": "ufs.impl.s3.S3", "anon": "yes"}, "/b"), "anon must be true or false"),
        (pwb({"cls": "ufs.impl.s3.S3", "endpoint_url": 9000}, "/b"), "endpoint_url must be a string"),
        (pwb({"cls": "ufs.impl.s3.S3", "region": "x"}, "/b"), "does not take region"),
        ('{"cls": "ufs.impl.s3.S3"}', "first path part is the bucket"),
        ('{"cls": "ufs.impl.local.Local"}', "wrap ufs.impl.local.Local"),
        ('{"ufs": {}}', 'with a "cls" string'),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_pwb_json_stops_start_up_with_a_message(config: str, message: str) -> None:
    with pytest.raises(StorageConfigError, match=message):
        open_storage(config)


async def test_s3_url_takes_credentials_and_endpoint_from_aws_variables(
    moto_server: s3.Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto_server.make_bucket("from-env")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_server.url,
    }.items():
        monkeypatch.setenv(name, value)
    store = open_storage("s3://from-env/ufs")
    try:
        await store.check()
        writer = await store.writer()
        await writer.write(b"hello")
        await writer.commit("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    finally:
        await store.close()
    listed = moto_server.client().list_objects_v2(Bucket="from-env")  # type: ignore[attr-defined]
    assert [o["Key"] for o in listed["Contents"]] == [
        "ufs/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    ]


async def test_minio_json_form_works_against_a_real_endpoint(moto_server: s3.Moto) -> None:
    moto_server.make_bucket("minio-form")
    netloc = moto_server.url.removeprefix("http://")
    minio = {
        "cls": "ufs.impl.minio.Minio",
        "netloc": netloc,
        "access_key": "test",
        "secret_key": "test",
        "secure": False,
    }
    store = open_storage(pwb(minio, "/minio-form/ufs"))
    try:
        await store.check()
        assert await store.size("0" * 64) is None
    finally:
        await store.close()
