"""Writing files so that nothing is ever half-written: a temporary file in the same folder, then a rename.

A reader (or a process killed mid-write, or a full disk) sees the old file or the new one, never part
of one. Every failure is a LabError that names the path, the cause and the fix.
"""

import errno
import os
import tempfile
from pathlib import Path

from lab.core.errors import LabError


def write_atomic(path: Path, data: str | bytes, mode: int | None = None, fix: str = "") -> None:
    """Write `data` to `path` atomically; `mode` sets the permissions (default: the umask's for a new file).

    `fix` names the way out when the folder cannot be written (e.g. "pass --out DIR").
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        if mode is None:  # mkstemp makes 0600: give a new file the permissions open() would
            umask = os.umask(0)
            os.umask(umask)
            mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise LabError(f"cannot write {path} ({exc.strerror or exc}): {fix_for(exc, fix)}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def fix_for(exc: OSError, fix: str = "") -> str:
    """What to do about an OSError from writing a file."""
    other = f" or {fix}" if fix else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"free some space on that disk{other}"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"make the folder writable for this user{other}"
    if exc.errno == errno.ENOENT:
        return f"create the folder first{other}"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"a file stands where a folder should be: move it{other}"
    return fix or "check the path, its permissions and free space"


def check_writable(folder: Path, fix: str = "") -> None:
    """Fail now, in one line, when `folder` cannot take a file (missing and not creatable, read-only,
    not ours, full), rather than after the work whose results would go there."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as probe:  # unnamed: nothing is left behind
            probe.write(b"\n")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise LabError(f"cannot write into {folder} ({exc.strerror or exc}): {fix_for(exc, fix)}") from None
