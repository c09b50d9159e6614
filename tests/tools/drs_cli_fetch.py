"""Runs inside .venvs/drs-cli: resolves one object with drs-cli's DRSClient, then downloads its bytes through
every access method (drs-cli itself stops at the access URL).

Usage: python drs_cli_fetch.py BASE_URL PORT OBJECT_ID OUTPUT_DIR. Writes OUTPUT_DIR/<access_id> and prints
{"object": <the DrsObject as drs-cli parsed it>, "access_urls": {<access_id>: <url>}} as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import requests
from drs_cli.client import DRSClient
from drs_cli.models import Error

# drs_cli replaces sys.excepthook with one that only logs, which would hide why this script failed.
sys.excepthook = sys.__excepthook__


def download(url: str, headers: list[str], target: Path) -> None:
    with requests.get(url, headers=dict(h.split(": ", 1) for h in headers), stream=True, timeout=60) as response:
        response.raise_for_status()
        with target.open("wb") as output:
            for chunk in response.iter_content(1 << 20):
                output.write(chunk)


def main(base_url: str, port: str, object_id: str, output_dir: str) -> None:
    # drs-cli ignores the port of drs:// URIs (and rejects dotless hosts such as localhost), so it is passed apart.
    client = DRSClient(uri=base_url, port=int(port))
    drs_object = client.get_object(object_id=object_id)
    if isinstance(drs_object, Error):
        raise SystemExit(f"get_object answered an error: {drs_object}")
    urls = {}
    for method in drs_object.access_methods or []:
        if not method.access_id:
            raise SystemExit(f"an access method without access_id: {method}")
        access_url = client.get_access_url(object_id=object_id, access_id=method.access_id)
        if isinstance(access_url, Error):
            raise SystemExit(f"get_access_url({method.access_id!r}) answered an error: {access_url}")
        download(access_url.url, access_url.headers or [], Path(output_dir) / method.access_id)
        urls[method.access_id] = access_url.url
    print(json.dumps({"object": json.loads(drs_object.json()), "access_urls": urls}))


if __name__ == "__main__":
    main(*sys.argv[1:])
