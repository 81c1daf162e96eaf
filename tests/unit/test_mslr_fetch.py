"""``fetch-mslr`` without network: extraction and checksum pinning on a hand-built sdist (the real download is
tested in tests/integration/test_fetch_mslr.py)."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from dualrerank.data import mslr


def fake_sdist(path, contents: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in contents.items():
            info = tarfile.TarInfo(f"{mslr.MEMBER_DIR}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_extract_copies_both_files_and_checks_their_pins(tmp_path, monkeypatch):
    contents = {"msn1.fold1.train.5k.txt": b"1 qid:1 1:0.5\n", "msn1.fold1.test.5k.txt": b"0 qid:2 1:1\n"}
    monkeypatch.setattr(mslr, "FILES", {n: hashlib.sha256(d).hexdigest() for n, d in contents.items()})
    sdist = fake_sdist(tmp_path / "rankeval-0.8.2.tar.gz", contents)
    out = mslr.extract(sdist, tmp_path / "mslr")
    assert [p.read_bytes() for p in out] == list(contents.values())
    assert mslr.is_complete(tmp_path / "mslr")


def test_a_file_that_does_not_match_its_pin_is_refused_and_removed(tmp_path):
    sdist = fake_sdist(tmp_path / "s.tar.gz", {name: b"0 qid:1 1:1\n" for name in mslr.FILES})
    with pytest.raises(mslr.FetchError, match="does not match its pinned sha256"):
        mslr.extract(sdist, tmp_path / "mslr")
    assert not any((tmp_path / "mslr").iterdir())
    assert not mslr.is_complete(tmp_path / "mslr")
