"""Files the user names: read as UTF-8 text with one clear error, written without clobbering.

Reading: :func:`read_text` decodes UTF-8 (a BOM is accepted) and turns an unreadable, binary or
UTF-16 file into one :class:`InputError` naming the file and the first bad byte's line — never a
``UnicodeDecodeError`` traceback.

Writing (every file or directory a user names as an output goes through here):

- a symbolic link is followed to its final target (a chain, or a dangling link whose target is
  then created) and the *target* is replaced — the link itself stays a link;
- only a regular file (or a name that does not exist yet) is written over: a directory, a device,
  a FIFO or a socket is refused with one :class:`InputError` ("refusing to write over …");
- :func:`atomic_output` writes a temporary file in the target's directory, syncs it (``fsync``) and
  moves it (``os.replace``) onto the target only when the writer returned; on any failure (a full
  disk included) the temporary file is removed and the old file is left as it was. The old
  file's permission bits are kept (a new file gets ``0o666`` minus the umask, as ``open`` would);
- :func:`output_dir` creates an output directory and, when the work inside fails, removes the
  directories it created — a directory that existed before is never removed.

Standard library only (``os``, ``tempfile``, ``shutil``, ``stat``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

from dynamo_plan.errors import DynamoPlanError, InputError

__all__ = [
    "STDOUT",
    "atomic_output",
    "decode_text",
    "is_stdout",
    "output_dir",
    "read_text",
    "resolve_output",
    "write_bytes_atomic",
    "write_text_atomic",
]

STDOUT = "-"
"""The output name that means standard output, where a command offers it."""


def decode_text(raw: bytes, where: str) -> str:
    """``raw`` as UTF-8 text (a leading BOM dropped); InputError naming ``where`` and the line of
    the first byte that is not UTF-8 (binary and UTF-16 files land here)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        hint = " (UTF-16? save it as UTF-8)" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise InputError(
            f"{where}:{line}: not UTF-8 text (byte {e.start} is 0x{raw[e.start]:02x}){hint}"
        ) from e


def read_text(path: Path, what: str = "file") -> str:
    """The UTF-8 text of ``path``; InputError (one line: what, path, reason) when it cannot be
    read or is not UTF-8 text."""
    try:
        raw = path.read_bytes()
    except IsADirectoryError as e:
        raise InputError(f"{what} {path} is a directory, expected a file") from e
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror or e}") from e
    return decode_text(raw, str(path))


def is_stdout(path: str | Path | None) -> bool:
    """Whether ``path`` is ``-`` (standard output, for the commands that offer it)."""
    return path is not None and str(path) == STDOUT


_KINDS = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _shown(path: Path, target: Path) -> str:
    """``path``, plus ``-> target`` when a link led elsewhere."""
    return str(path) if os.path.abspath(path) == str(target) else f"{path} (-> {target})"


def resolve_output(path: str | Path, error: type[DynamoPlanError] = InputError) -> Path:
    """The file that writing ``path`` replaces: symbolic links followed to the final target
    (absolute; a dangling link gives its would-be target, which the write then creates).

    Raises ``error`` (InputError by default) when the target exists and is not a regular file
    ("refusing to write over PATH: it is a character device"), when its directory does not exist,
    or when the links loop.
    """
    path = Path(path)
    target = Path(os.path.realpath(path))
    try:
        st = os.stat(target)
    except FileNotFoundError:
        if os.path.islink(target):  # realpath stops at a link it cannot follow: a loop
            raise error(f"cannot write {path}: too many levels of symbolic links") from None
        if not target.parent.is_dir():
            raise error(f"cannot write {path}: directory {target.parent} does not exist") from None
        return target
    except OSError as e:  # ELOOP, ENOTDIR, EACCES
        raise error(f"cannot write {path}: {e.strerror or e}") from e
    if not stat.S_ISREG(st.st_mode):
        raise error(f"refusing to write over {_shown(path, target)}: it is a {_kind(st.st_mode)}")
    return target


def _umask() -> int:
    """The process umask, read from ``/proc/self/status`` where Linux shows it (setting it to
    read it back would race with other threads creating files), else by setting it."""
    with (
        contextlib.suppress(OSError, ValueError, IndexError),
        open("/proc/self/status", encoding="ascii") as status,
    ):
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _new_file_mode() -> int:
    """0o666 minus the process umask: the mode ``open(path, "w")`` would give a new file."""
    return 0o666 & ~_umask()


def _unlink(name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; best effort (some file systems refuse a directory fsync)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_output(
    path: str | Path,
    mode: Literal["w", "wb"] = "w",
    error: type[DynamoPlanError] = InputError,
) -> Iterator[IO[Any]]:
    """An open temporary file (text ``"w"``: UTF-8, newlines as written; or bytes ``"wb"``) that
    replaces the resolved target of ``path`` (see :func:`resolve_output`) when the block ends.

    The temporary file lives in the target's directory; it is flushed, given the old file's
    permission bits (or the umask default), synced and moved onto the target (``os.replace``).
    When the block raises, or a write, flush or sync fails (``ENOSPC``…), the temporary file is
    removed and the target keeps its old content; an ``OSError`` becomes ``error`` ("cannot write
    PATH: reason"), anything else propagates unchanged.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', not {mode!r}")
    target = resolve_output(path, error)
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise error(f"cannot write {path}: {e.strerror or e}") from e
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as e:
        raise error(f"cannot write {path}: {e.strerror or e}") from e
    try:
        handle: IO[Any] = (
            os.fdopen(fd, "w", encoding="utf-8", newline="") if mode == "w" else os.fdopen(fd, "wb")
        )
        with handle:
            yield handle
            handle.flush()
            if st is None:
                os.fchmod(handle.fileno(), _new_file_mode())
            else:
                os.fchmod(handle.fileno(), stat.S_IMODE(st.st_mode))
                if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                    with contextlib.suppress(OSError):  # only root may give files away
                        os.fchown(handle.fileno(), st.st_uid, st.st_gid)
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as e:
        _unlink(tmp)
        raise error(f"cannot write {path}: {e.strerror or e}") from e
    except BaseException:
        _unlink(tmp)
        raise
    _fsync_dir(target.parent)


def write_text_atomic(
    path: str | Path, text: str, error: type[DynamoPlanError] = InputError
) -> Path:
    """Write ``text`` (UTF-8) to ``path`` all-or-nothing (:func:`atomic_output`); the file
    written (the link's target when ``path`` is a symbolic link)."""
    with atomic_output(path, "w", error) as handle:
        handle.write(text)
    return resolve_output(path, error)


def write_bytes_atomic(
    path: str | Path, data: bytes, error: type[DynamoPlanError] = InputError
) -> Path:
    """Write ``data`` to ``path`` all-or-nothing (:func:`atomic_output`); the file written."""
    with atomic_output(path, "wb", error) as handle:
        handle.write(data)
    return resolve_output(path, error)


@contextlib.contextmanager
def output_dir(path: str | Path, what: str = "--out") -> Iterator[Path]:
    """Create the directory ``path`` (and missing parents; a symbolic link is followed) for the
    block's outputs; when the block raises, remove the directories this call created, with
    whatever the block put in them. A directory that already existed is left as it is.

    InputError (naming ``what``) when ``path`` exists and is not a directory or cannot be created.
    Yields ``path`` unchanged.
    """
    path = Path(path)
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_dir():
        raise InputError(f"{what} {path}: exists and is not a directory")
    top: Path | None = None  # the highest directory this call creates
    probe = target
    while not probe.exists() and probe != probe.parent:
        top = probe
        probe = probe.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if top is not None and top.is_dir():
            shutil.rmtree(top, ignore_errors=True)
        raise InputError(f"{what} {path}: cannot create the directory: {e.strerror or e}") from e
    try:
        yield path
    except BaseException:
        if top is not None:
            shutil.rmtree(top, ignore_errors=True)
        raise
