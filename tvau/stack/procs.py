"""Background processes of the stack: start detached with a log and a pid file, find, stop.

Every process the stack starts carries the environment variable MARKER=<stack dir>, and children
inherit it (uvicorn workers, PostgreSQL backends, flow runs started by the worker). That makes
"no stray processes" checkable: after `down`, no process on the machine may carry the marker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

MARKER = "TVAU_STACK_DIR"


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2])


def alive(pid: int | None) -> bool:
    """True if `pid` runs (a zombie waiting to be reaped does not count)."""
    if not pid:
        return False
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def group_members(pgid: int) -> list[int]:
    out = []
    for pid in _all_pids():
        st = _stat(pid)
        if st is not None and st[1] == pgid and st[0] not in ("Z", "X"):
            out.append(pid)
    return out


def carries_marker(pid: int | None, stack_dir: Path) -> bool:
    """True if `pid` is a live process of this stack (a pid file can outlive its process and the
    number be reused by an unrelated one, which must never be signalled)."""
    if not alive(pid):
        return False
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{MARKER}={stack_dir}".encode() in env.split(b"\0")


def marked(stack_dir: Path) -> list[int]:
    """Live processes that carry this stack's marker (readable ones: all of them when root)."""
    return [pid for pid in _all_pids() if pid != os.getpid() and carries_marker(pid, stack_dir)]


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def spawn(
    argv: list[str],
    *,
    env: dict[str, str],
    log: Path,
    pidfile: Path,
    cwd: Path,
    user: str | None = None,
) -> subprocess.Popen:
    """Start `argv` detached (its own session, so its whole process group can be stopped at once),
    appending stdout and stderr to `log`; write its pid to `pidfile`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
            **as_user(user),
        )
    tmp = pidfile.with_suffix(".tmp")
    tmp.write_text(f"{proc.pid}\n")
    os.replace(tmp, pidfile)
    return proc


def as_user(user: str | None) -> dict:
    """Popen arguments that run a child as `user` with only that user's groups (None: as we are)."""
    if user is None:
        return {}
    import pwd

    pw = pwd.getpwnam(user)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_gone(pids_fn, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    left = pids_fn()
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = pids_fn()
    return left


def stop_groups(leaders: list[int], timeout: float = 20.0) -> list[int]:
    """SIGTERM the process groups led by `leaders` (all at once, so they shut down in parallel);
    SIGKILL whatever is left after `timeout` seconds. Returns the pids that had to be killed."""
    def members() -> list[int]:
        return [p for pgid in leaders for p in group_members(pgid)]

    for pgid in leaders:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    left = _wait_gone(members, timeout)
    if left:
        _signal(left, signal.SIGKILL)
        _wait_gone(members, 5.0)
    return left


def stop_group(pid: int, timeout: float = 20.0) -> list[int]:
    return stop_groups([pid], timeout)


def stop_marked(stack_dir: Path, timeout: float = 10.0) -> list[int]:
    """Stop every process still carrying the stack's marker; returns the pids found."""
    found = marked(stack_dir)
    if not found:
        return []
    _signal(found, signal.SIGTERM)
    left = _wait_gone(lambda: marked(stack_dir), timeout)
    if left:
        _signal(left, signal.SIGKILL)
        _wait_gone(lambda: marked(stack_dir), 5.0)
    return found
