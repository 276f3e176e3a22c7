"""Files that appear whole or not at all: written to a temporary file in the target folder, then
moved into place with ``os.replace`` (atomic on POSIX within one file system); on any error the
temporary file is removed and the target is left as it was. A reader never sees half a file."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


@contextmanager
def atomic_write(path: str | os.PathLike, binary: bool = False) -> Iterator[IO]:
    """``with atomic_write(p) as fh: fh.write(...)``: ``p`` (parents created) holds what was written
    once the block ends without an exception."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + out.name + ".", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as fh:
            yield fh
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
