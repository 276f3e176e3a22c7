"""core.atomic_file: the target appears whole or keeps its old content."""
from __future__ import annotations

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
