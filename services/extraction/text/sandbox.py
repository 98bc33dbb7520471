"""The parser child's sandbox: what a hostile PDF could reach if it took over the process that parses it.

The child starts with an environment that holds no secret (no NATS or database password, no platform
secret: `pool.py` passes only where Tesseract's languages are, and `OMP_THREAD_LIMIT`). Then, before it
reads any file, `enter()`:

- puts it in a network namespace of its own, with only a loopback interface that is down: no connection
  to anything, inside the machine or out (`unshare(CLONE_NEWNET)`; a non-root worker asks for a user
  namespace with it, which most kernels allow; where neither works, the child keeps the network and the
  worker logs it);
- when the worker runs as root, switches to an unprivileged uid/gid (`ATRIUM_EXTRACT_CHILD_UID`, default
  65534, "nobody"), which cannot read the worker's secrets (`<data>/secrets`, `<data>/keys`, the
  worker's `/proc/<pid>/environ`) or signal other processes. A directory on the way to the Python
  installation that this uid could not enter (a Python under `/root`, as pyenv installs it) is covered,
  in the child's own mount namespace, by an empty tmpfs that holds only the installation, so the child
  imports as before and sees nothing else there;
- sets `no_new_privs`, so nothing it runs can gain privileges again.

The pool makes each job's input readable (group) and its output directory writable for that uid.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000
PR_SET_NO_NEW_PRIVS = 38
NOBODY = 65534


@dataclass
class SandboxReport:
    """What the child got, sent to the worker with its `ready` message (and logged when something is missing)."""

    network_namespace: bool = False
    uid: int = -1
    gid: int = -1
    covered: list[str] = field(default_factory=list)  # directories replaced by a tmpfs in the child's view
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _unshare(flags: int) -> None:
    if _libc().unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda v: v.encode() if v is not None else None  # noqa: E731
    if _libc().mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _may(st: os.stat_result, uid: int, gid: int, bits: int) -> bool:
    """Whether `uid`/`gid` (no supplementary groups) has the permission `bits` (r=4, w=2, x=1)."""
    if st.st_uid == uid:
        return bool((st.st_mode >> 6) & bits == bits)
    if st.st_gid == gid:
        return bool((st.st_mode >> 3) & bits == bits)
    return bool(st.st_mode & bits == bits)


def first_closed_ancestor(path: Path, uid: int, gid: int) -> Path | None:
    """The first directory on the way to `path` that `uid` cannot enter (or `path` itself if it cannot list it)."""
    parts = path.resolve().parts
    current = Path(parts[0])
    for part in parts[1:]:
        if not _may(os.stat(current), uid, gid, 1):
            return current
        current = current / part
    st = os.stat(current)
    if stat.S_ISDIR(st.st_mode) and not _may(st, uid, gid, 5):
        return current
    return None


def needed_paths() -> list[Path]:
    """What the child reads after the switch: the interpreter's and the venv's files, and the code."""
    found: list[Path] = []
    for p in {sys.base_prefix, sys.prefix, os.getcwd(), *sys.path}:
        if p and os.path.isdir(p):
            found.append(Path(p).resolve())
    return sorted(set(found))


def _cover(closed: Path, keep: list[Path], report: SandboxReport) -> None:
    """Replace `closed` by a tmpfs that only holds the `keep` directories (bind mounts of the originals)."""
    handles = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in keep}
    try:
        _mount("tmpfs", str(closed), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k")
        for p, fd in handles.items():
            p.mkdir(parents=True, exist_ok=True)
            _mount(f"/proc/self/fd/{fd}", str(p), None, MS_BIND | MS_REC)
    finally:
        for fd in handles.values():
            os.close(fd)
    report.covered.append(str(closed))


def _switch_user(uid: int, gid: int, report: SandboxReport) -> None:
    """Open the way to the interpreter for `uid` (own mount namespace), then become it."""
    needed = needed_paths()
    closed: dict[Path, list[Path]] = {}
    for p in needed:
        top = first_closed_ancestor(p, uid, gid)
        if top is not None:
            closed.setdefault(top, []).append(p)
    if closed:
        _unshare(CLONE_NEWNS)
        _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here reaches the worker's view
        for top, keep in closed.items():  # the first closed directory of each path: never nested
            if top == Path("/") or top in keep:
                raise OSError(errno.EACCES, f"{top} is closed to uid {uid} and cannot be covered")
            _cover(top, keep, report)
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError(errno.EPERM, "the uid did not change")


def enter(uid: int = NOBODY, gid: int | None = None) -> SandboxReport:
    """Confine the calling process (a fresh, single-threaded child). Never raises: what could not be done is
    in `problems`, and the process keeps whatever confinement it got."""
    gid = uid if gid is None else gid
    report = SandboxReport()
    root = os.geteuid() == 0
    try:
        _unshare(CLONE_NEWNET if root else CLONE_NEWUSER | CLONE_NEWNET)
        report.network_namespace = True
    except OSError as exc:
        report.problems.append(f"no network namespace ({exc.strerror}): the parser can reach the network")
    if root and uid >= 0:
        try:
            _switch_user(uid, gid, report)
        except OSError as exc:
            report.problems.append(f"still root ({exc}): the parser can read what the worker can")
    try:
        if _libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            report.problems.append("no_new_privs could not be set")
    except AttributeError:
        report.problems.append("no_new_privs could not be set")
    report.uid, report.gid = os.getuid(), os.getgid()
    return report
