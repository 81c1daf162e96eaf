"""``dualrerank fetch-mslr``: the MSLR-WEB10K Fold 1 excerpts shipped inside the ``rankeval==0.8.2`` sdist.

The only real ranking data these machines can reach comes from the package registry: the sdist
of rankeval 0.8.2 carries two 5,000-row excerpts of MSLR-WEB10K Fold 1 (43 queries each, 136 features,
grades 0-4) as test fixtures. The data's licence (Microsoft Research, research use) is not verified for
redistribution, so it is fetched at run time into ``data/raw/mslr/`` (DVC-tracked), never committed.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "rankeval==0.8.2"
MEMBER_DIR = "rankeval-0.8.2/rankeval/test/data"
FILES = {  # file name -> sha256, pinned so a changed upload cannot slip in unnoticed
    "msn1.fold1.train.5k.txt": "6d1721de961a35fbaef7085dc5b41e2940f0ddb04bab5f7a8566cf7db4158fa6",
    "msn1.fold1.test.5k.txt": "13d3c638edd23e482c38f4316c2680c938c2eaedbe096970ab30a48e364463d3",
}
DEFAULT_DEST = Path("data/raw/mslr")


class FetchError(RuntimeError):
    """The excerpt could not be downloaded or does not match its pinned checksum."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_complete(dest: Path) -> bool:
    """Both files present with their pinned checksums."""
    return all((dest / name).is_file() and sha256(dest / name) == digest for name, digest in FILES.items())


def registry_reachable(timeout: float = 5.0) -> bool:
    """Does the package registry answer ``pip index versions rankeval`` with 0.8.2 within ``timeout`` seconds?

    One index request through pip itself (a bare TCP probe is not enough: a proxy may accept any connection).
    """
    cmd = [sys.executable, "-m", "pip", "index", "versions", "rankeval", "--timeout", str(timeout), "--retries", "0"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3 * timeout + 10)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and "0.8.2" in proc.stdout


def download_sdist(workdir: Path) -> Path:
    """``pip download --no-deps --no-binary rankeval rankeval==0.8.2`` into ``workdir``; the sdist's path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "rankeval", PACKAGE, "-d", str(workdir)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    sdists = sorted(workdir.glob("rankeval-0.8.2.tar.gz"))
    if proc.returncode != 0 or not sdists:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise FetchError(f"`{' '.join(cmd[2:])}` failed (is the package registry reachable?):\n{tail}")
    return sdists[0]


def extract(sdist: Path, dest: Path) -> list[Path]:
    """Copy the two excerpt files out of the sdist into ``dest`` and check their checksums."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    with tarfile.open(sdist, "r:gz") as tar:
        for name, digest in FILES.items():
            member = tar.extractfile(f"{MEMBER_DIR}/{name}")
            if member is None:
                raise FetchError(f"{sdist} has no {MEMBER_DIR}/{name}")
            target = dest / name
            with open(target, "wb") as fh:
                shutil.copyfileobj(member, fh)
            if sha256(target) != digest:
                target.unlink()
                raise FetchError(f"{name} from {sdist} does not match its pinned sha256 {digest}")
            out.append(target)
    return out


def dvc_track(dest: Path, root: Path) -> str:
    """``dvc add`` the folder when ``root`` is a DVC project (the data then lives in the DVC cache, with a
    pointer file ``<dest>.dvc``); returns what happened, for the log."""
    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    if not (root / ".dvc").is_dir() or not Path(dvc).exists():
        return "not tracked by DVC (no .dvc/ folder or no dvc executable)"
    rel = str(dest.resolve().relative_to(root.resolve()))
    proc = subprocess.run([dvc, "add", "--quiet", rel], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        return f"dvc add failed (the files are in place): {proc.stderr.strip().splitlines()[-1:]}"
    return f"tracked by DVC ({dest}.dvc)"


def fetch_mslr(dest: Path = DEFAULT_DEST, root: Path = Path("."), force: bool = False) -> list[Path]:
    """Download and extract the excerpts into ``root / dest`` (skipped if already there and intact)."""
    target = dest if dest.is_absolute() else root / dest
    if force or not is_complete(target):
        with tempfile.TemporaryDirectory() as tmp:
            print(f"fetch-mslr: pip download {PACKAGE} (an sdist of about 2.3 MB) ...", flush=True)
            extract(download_sdist(Path(tmp)), target)
    else:
        print(f"fetch-mslr: {target} already holds both files (checksums match)", flush=True)
    if target.resolve().is_relative_to(root.resolve()):
        print(f"fetch-mslr: {dvc_track(target, root)}", flush=True)
    return [target / name for name in FILES]
