"""A real S3 endpoint for tests and benchmarks: moto's standalone server on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import httpx

from postgres import free_port

MOTO = Path(sys.executable).parent / "moto_server"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}


class Moto:
    def __init__(self, port: int, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.env = env or {}
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(MOTO), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **self.env},
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/moto-api/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise TimeoutError("moto_server did not come up")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def client(self) -> object:
        return boto3.client("s3", endpoint_url=self.url, **CREDENTIALS)

    def make_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]

    def reset(self) -> None:
        httpx.post(f"{self.url}/moto-api/reset")


@contextmanager
def moto(env: dict[str, str] | None = None) -> Iterator[Moto]:
    server = Moto(free_port(), env)
    server.start()
    try:
        yield server
    finally:
        server.stop()
