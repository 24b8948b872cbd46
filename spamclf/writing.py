"""Writing outputs so that a failure is one error, never a torn file or a traceback.

Files (preprocess's split, evaluate's report) go through :class:`OutputFiles`: each is written
to a temporary file beside its final name (``.NAME.tmp-PID-*``, hidden), flushed to disk, and
only once every file of the set is complete are they renamed over the old ones. A full disk, a
read-only folder or a file size limit leaves the old files as they were and raises OutputError;
a kill part-way may leave a hidden temporary file, never a partial NAME, and the next write of
NAME into that folder removes it. (Bundles, which are
folders, are installed the same way by ``bundle.write_bundle``.)

Streams (stdout) go through :func:`write_stream`: a reader that went away (``| head -1``)
raises :class:`OutputClosed`, any other failure OutputError.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO

from .errors import OutputError


class OutputClosed(Exception):
    """The reader of a stream went away (a closed pipe): a normal end, not an error."""


def write_stream(out: IO[str], text: str = "", flush: bool = False) -> None:
    """``out.write(text)`` (and ``flush``), with OSError turned into OutputClosed or OutputError."""
    try:
        if text:
            out.write(text)
        if flush:
            out.flush()
    except BrokenPipeError as exc:
        raise OutputClosed() from exc
    except OSError as exc:
        name = getattr(out, "name", None)
        where = "standard output" if name in (None, "<stdout>", 1) else str(name)
        raise OutputError(f"cannot write to {where}: {exc.strerror or exc}") from exc


def writer_is_gone(pid: int) -> bool:
    """Whether the process that left a ``.NAME.tmp-PID-*`` work file or folder is gone (killed): only
    then may its leftovers be removed. Alive, under another user, or unknowable: not gone."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        pass
    return False


def fsync_file(path: Path) -> None:
    """Flush a written file to disk before it is renamed into place."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (the renames in it) to disk, where the file system can."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder; the rename is still atomic
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class OutputFiles:
    """A set of files in ``folder`` that replace the old ones all together, and only when all are written.

    ::

        with OutputFiles(out) as files:
            with files.open("train.jsonl") as fh:
                ...
            files.write_text("stats.json", text)

    Leaving the ``with`` block normally puts every file in place; leaving it with an exception
    removes the temporary files and keeps the old ones. An OSError on the way (from the block's
    own writes too) becomes OutputError naming the file.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._staged: list[tuple[Path, Path]] = []  # (temporary file, final path)
        self._current = self.folder  # what was being written when an error came

    def __enter__(self) -> "OutputFiles":
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error(exc) from exc
        return self

    def path(self, name: str) -> Path:
        """A new, empty temporary file that will become ``folder/name``: for writers that want a path.

        Temporary files of ``name`` that a killed writer left are removed first."""
        self._current = self.folder / name
        self._remove_stale(name)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.tmp-{os.getpid()}-", dir=self.folder)
        self._staged.append((Path(tmp), self._current))
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # the mode a plain open() would give, not mkstemp's 0600
        finally:
            os.close(fd)
        return Path(tmp)

    def open(self, name: str, mode: str = "w", **kwargs) -> IO:
        """The temporary file for ``name``, opened (text is UTF-8 unless ``encoding`` says otherwise)."""
        if "b" not in mode:
            kwargs.setdefault("encoding", "utf-8")
        return open(self.path(name), mode, **kwargs)

    def write_text(self, name: str, text: str) -> None:
        with self.open(name, newline="") as fh:
            fh.write(text)

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None:
            try:
                self._commit()
                return False
            except OSError as err:
                self._discard()
                raise self._error(err) from err
        self._discard()
        if isinstance(exc, OSError):
            raise self._error(exc) from exc
        return False

    def _commit(self) -> None:
        for tmp, final in self._staged:
            self._current = final
            fsync_file(tmp)
        for tmp, final in self._staged:
            self._current = final
            os.replace(tmp, final)
        self._staged = []
        fsync_folder(self.folder)  # the renames themselves survive a power cut

    def _remove_stale(self, name: str) -> None:
        prefix = f".{name}.tmp-"
        try:
            entries = [e for e in self.folder.iterdir() if e.name.startswith(prefix)]
        except OSError:
            return
        for entry in entries:
            pid = entry.name[len(prefix) :].split("-", 1)[0]
            if pid.isdigit() and entry.is_file() and not entry.is_symlink() and writer_is_gone(int(pid)):
                try:
                    entry.unlink()
                except OSError:
                    pass

    def _discard(self) -> None:
        for tmp, _ in self._staged:
            try:
                tmp.unlink()
            except OSError:
                pass
        self._staged = []

    def _error(self, exc: OSError) -> OutputError:
        return OutputError(f"cannot write {self._current}: {exc.strerror or exc}; the files already in {self.folder} are unchanged")
