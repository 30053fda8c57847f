"""One run per notebook report folder at a time.

Two runs of one notebook at once (a batch ``./run_all.sh`` while the same notebook runs in
JupyterLab, or two batch runs) would write into the same ``reports/<notebook>/running/`` folder and
publish a mixture that looks like a normal complete run. :class:`FolderLock` prevents that: an
exclusive ``fcntl.flock`` on ``reports/.locks/<notebook>.lock`` (beside the folder, so that the
folder holds only the run's files), taken by :class:`imgclf.reports.Report`
before it touches ``running/`` and given back by ``Report.finish()`` or when the process exits.

- A second run is refused at once with :class:`NotebookBusy`, whose message names the running one
  (pid, host, start time, command) and says what to do.
- The kernel drops a ``flock`` when its holder dies (killed, crashed, kernel restarted), so a
  crashed run never blocks the folder: the next run takes the lock and replaces its ``running/``.
- The same process may take the lock of a folder it holds again (re-running a notebook's set-up
  cell in JupyterLab replaces the unfinished run, as before).

``flock`` works between processes of one machine and on local file systems; on NFS it may be
emulated with ``fcntl`` byte-range locks (Linux does this) or not work at all: run one notebook at
a time there.

Command line (used by ``run_all.sh`` before it touches a notebook's log)::

    python -m imgclf.locks check reports/02_fracture_cnn   # exit 1 and the holder when busy
"""

from __future__ import annotations

import atexit
import datetime as _dt
import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from .config import ParameterError

LOCKS = ".locks"
"""The folder, beside the notebooks' report folders, that holds their lock files."""


def lock_path(folder: str | os.PathLike) -> Path:
    """``<parent>/.locks/<name>.lock`` of the folder ``<parent>/<name>``."""
    folder = Path(folder)
    return folder.parent / LOCKS / f"{folder.name}.lock"


class NotebookBusy(ParameterError):
    """Another process is running this notebook into the same report folder."""


_HELD: dict[str, "FolderLock"] = {}  # folder (resolved) -> the lock this process holds on it


def _describe(info: dict | None) -> str:
    if not info:
        return "a process whose details are not readable yet"
    bits = [f"pid {info.get('pid', '?')} on host {info.get('host', '?')}", f"started {info.get('started', '?')}"]
    if info.get("command"):
        bits.append(f"command {info['command']}")
    return ", ".join(bits)


def read_holder(folder: str | os.PathLike) -> dict | None:
    """What the lock file of ``folder`` says about the process that holds (or last held) it."""
    try:
        text = lock_path(folder).read_text(errors="replace").strip()
        info = json.loads(text) if text else None
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


class FolderLock:
    """An exclusive ``flock`` on :func:`lock_path` of ``folder`` (see the module). ``what`` names the folder's
    owner in messages (e.g. the notebook)."""

    def __init__(self, folder: str | os.PathLike, what: str = ""):
        self.folder = Path(folder)
        self.path = lock_path(self.folder)
        self.what = what or self.folder.name
        self.fd: int | None = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def acquire(self) -> "FolderLock":
        """Take the lock or raise :class:`NotebookBusy` naming its holder. Returns ``self``."""
        key = str(self.folder.resolve())
        mine = _HELD.get(key)
        if mine is not None and mine is not self:  # this process holds it already: hand it over
            self.fd, mine.fd = mine.fd, None
            _HELD[key] = self
            self._write_info()
            return self
        if self.fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        for attempt in range(6):  # a few tries: busy() and `imgclf.locks check` hold it for an instant
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                time.sleep(0.1)
        else:
            os.close(fd)
            holder = read_holder(self.folder)
            raise NotebookBusy(
                f"{self.what} is already running into {self.folder} ({_describe(holder)}; lock {self.path}). "
                "Two runs of one notebook would mix their outputs: wait for that run to finish, or stop it "
                f"(kill {holder.get('pid') if holder else '<pid>'} on its host; in JupyterLab: restart that kernel) and run again. A crashed run holds "
                "no lock: this message means the process is alive."
            ) from None
        self.fd = fd
        _HELD[key] = self
        self._write_info()
        return self

    def _write_info(self) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "command": " ".join(sys.argv)[:300]}
        data = json.dumps(info).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        """Give the lock back (nothing when this object does not hold it)."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        key = str(self.folder.resolve())
        if _HELD.get(key) is self:
            del _HELD[key]
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def held_here(folder: str | os.PathLike) -> bool:
    """Whether this process holds the lock of ``folder``."""
    lock = _HELD.get(str(Path(folder).resolve()))
    return lock is not None and lock.held


def busy(folder: str | os.PathLike) -> dict | None:
    """``None`` when no other process holds the lock of ``folder``; else what its lock file says
    about the holder (``{}`` when unreadable). Takes and drops the lock to find out."""
    folder = Path(folder)
    if held_here(folder) or not lock_path(folder).is_file():
        return None
    try:
        fd = os.open(lock_path(folder), os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return read_holder(folder) or {}
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@atexit.register
def _release_all() -> None:  # the kernel would drop them anyway; this clears the holder's details
    for lock in list(_HELD.values()):
        lock.release()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "check":
        print("usage: python -m imgclf.locks check <reports/notebook folder>", file=sys.stderr)
        return 2
    holder = busy(args[1])
    if holder is None:
        return 0
    print(f"{Path(args[1]).name} is already running into {args[1]} ({_describe(holder)}); not started again",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
