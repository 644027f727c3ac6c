"""`--json` means only JSON on stdout: keep what libraries print off it while a command works.

DeepSpeed (imported by transformers and accelerate) logs through a handler bound to stdout, and
other libraries print banners or progress there too, so a command's JSON would follow stray lines
(`[WARNING] [real_accelerator.py...] Setting accelerator to CPU...`). Commands with `--json` run
their work inside `stdout_to_stderr()` and print the JSON after it. The redirection is at the file
descriptor level, so it also covers handlers that captured `sys.stdout` earlier and output written
by C extensions.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """While inside, everything written to stdout goes to stderr instead."""
    sys.stdout.flush()
    try:
        out_fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        # Not real files (a test runner's captured streams): redirect at the Python level.
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    saved = os.dup(out_fd)
    try:
        os.dup2(err_fd, out_fd)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, out_fd)
        os.close(saved)
