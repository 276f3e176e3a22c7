"""Files that appear whole or not at all: written to a temporary file in the target folder, then
moved into place with ``os.replace`` (atomic on POSIX within one file system); on any error the
temporary file is removed and the target is left as it was. A reader never sees half a file."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


def _process_umask() -> int:
    """The umask, read without changing it where Linux reports it (os.umask can only set it, and
    setting it even briefly would race with files other threads create)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_process_umask()   # what open() would give a new file


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
        os.chmod(tmp, _FILE_MODE)        # mkstemp makes 0600; a report or checkpoint is as readable as any file
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
