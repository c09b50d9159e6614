"""Virtual environments for third-party tools the tests run (DRS clients, the GA4GH compliance suite).

Their pinned dependencies clash with ours and with each other, so each gets its own `.venvs/<name>/` in the
repository (gitignored), installed from `tests/tools/<name>.txt` and reused while that file, this module and
the Python version stay the same. `python tests/toolvenv.py [NAME ...]` builds them ahead of a test run.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

VENVS = Path(__file__).resolve().parent.parent / ".venvs"
TOOLS = Path(__file__).resolve().parent / "tools"


def site_packages(venv: Path) -> Path:
    command = [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
    return Path(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip())


def add_supported_versions(venv: Path) -> None:
    # drs-compliance-suite 1.0.3 imports a top-level module its wheel does not ship.
    (site_packages(venv) / "supported_drs_versions.py").write_text('SUPPORTED_DRS_VERSIONS = ["1.2.0"]\n')


AFTER_INSTALL: dict[str, Callable[[Path], None]] = {"compliance": add_supported_versions}


def fingerprint(name: str) -> str:
    parts = [(TOOLS / f"{name}.txt").read_bytes(), Path(__file__).read_bytes(), sys.version.encode()]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


def ensure(name: str) -> Path:
    """The bin/ folder of the tool's virtualenv, built first when missing or stale."""
    venv = VENVS / name
    stamp = venv / "drsbox-fingerprint"
    VENVS.mkdir(exist_ok=True)
    with open(VENVS / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once build it once
        if not stamp.is_file() or stamp.read_text() != fingerprint(name):
            build(name, venv)
            stamp.write_text(fingerprint(name))
    return venv / "bin"


def build(name: str, venv: Path) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q"]
    # --no-compile: byte-compiling every installed file (pandas, numpy) would triple the install time.
    for command in (
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [*pip, "--no-compile", "-r", str(TOOLS / f"{name}.txt")],
    ):
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise RuntimeError(f"building .venvs/{name} failed: {' '.join(command)}\n{result.stdout}{result.stderr}")
    AFTER_INSTALL.get(name, lambda venv: None)(venv)


if __name__ == "__main__":
    for tool in sys.argv[1:] or sorted(path.stem for path in TOOLS.glob("*.txt")):
        print(tool, ensure(tool), flush=True)
