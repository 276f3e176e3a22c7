"""core.atomic_file: the target appears whole or keeps its old content."""
from __future__ import annotations

import os
import stat

import pytest

from vode_ros.core.atomic_file import atomic_write


def test_written_whole_and_old_content_kept_on_error(tmp_path):
    out = tmp_path / "sub" / "r.json"
    with atomic_write(out) as fh:
        fh.write("{}\n")
    assert out.read_text() == "{}\n"
    with pytest.raises(RuntimeError), atomic_write(out) as fh:
        fh.write("half")
        raise RuntimeError("interrupted")
    assert out.read_text() == "{}\n" and sorted(p.name for p in out.parent.iterdir()) == ["r.json"]
    with atomic_write(out, binary=True) as fh:
        fh.write(b"\x89PNG")
    assert out.read_bytes() == b"\x89PNG"


def test_file_mode_follows_the_umask_like_open(tmp_path):
    """mkstemp's private 0600 must not leak into the written file."""
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    out = tmp_path / "atomic.txt"
    with atomic_write(out) as fh:
        fh.write("x")
    assert stat.S_IMODE(os.stat(out).st_mode) == stat.S_IMODE(os.stat(plain).st_mode)
