"""Output paths checked before any work starts: a verb that would write into a read-only folder, under
a file, or over a folder where a file belongs says so in one line at once, instead of a traceback
after minutes of work (an evaluation, a training run, a conversion).

    problem = output_problem(args.out, "--out", folder=True)
    if problem: print(f"vode demo: {problem}", file=sys.stderr); return 2

The check creates nothing that stays: it writes and removes one probe file in the nearest folder
that exists on the way to the output (the folders below it are created later by the verb itself).
Writing a probe is the only test that holds for root, read-only mounts and /sys alike
(``os.access`` says yes to root everywhere).
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

EXIT_BAD_OUTPUT = 2


def _nearest_existing(path: Path) -> Path:
    """The path itself or its closest ancestor that exists (a file or a folder)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def _probe(folder: Path) -> str | None:
    """Why nothing can be created in `folder`, or None (a probe file is written and removed)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".vode-write-check-", dir=folder)
    except OSError as exc:
        reason = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                  errno.EPERM: "not permitted", errno.ENOSPC: "no space left",
                  errno.ENOENT: "no files can be created there"}.get(exc.errno, exc.strerror)
        return f"{folder} is not writable ({reason})"
    os.close(fd)
    os.unlink(name)
    return None


def output_problem(path: str | os.PathLike | None, flag: str, folder: bool) -> str | None:
    """Why `path` cannot be written, in one line naming `flag` and the way out, or None.

    ``folder``: the output is a folder (created with its parents) rather than one file (written
    atomically beside where it goes). None for an unset path (the option was not given)."""
    if path is None or str(path) == "":
        return None
    out = Path(path).expanduser()
    way_out = "choose a path you can write to"
    if out.exists():
        if folder and not out.is_dir():
            return f"{flag} {out} is a file, not a folder; {way_out}"
        if not folder and out.is_dir():
            return f"{flag} {out} is a folder; give a file name in it (e.g. {out / 'result.json'})"
    base = _nearest_existing(out if folder else out.parent)
    if not base.is_dir():
        return f"{flag} {out}: {base} is a file, so nothing can be created under it; {way_out}"
    if folder and base == out and not os.access(out, os.X_OK):
        return f"{flag} {out} cannot be entered (permission denied); {way_out}"
    problem = _probe(base)
    return f"{flag} {out}: {problem}; {way_out}" if problem else None


def first_output_problem(outputs: list[tuple[str | os.PathLike | None, str, bool]]) -> str | None:
    """The first problem of several (path, flag, folder) outputs, or None."""
    for path, flag, folder in outputs:
        problem = output_problem(path, flag, folder)
        if problem:
            return problem
    return None


def declare_outputs(parser, *outputs: tuple[str, str, bool]) -> None:
    """Name a verb's outputs as (dest, flag as the user types it, is a folder); `vode` checks them
    all (:func:`declared_output_problem`) before the verb runs."""
    parser.set_defaults(vode_outputs=tuple(outputs))


def declared_output_problem(args) -> str | None:
    """The first unwritable output that the parsed verb declared, or None."""
    return first_output_problem([(getattr(args, dest, None), flag, folder)
                                 for dest, flag, folder in getattr(args, "vode_outputs", ())])
