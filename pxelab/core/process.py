"""Stopping a child process the same way everywhere: SIGTERM, then SIGKILL."""

from __future__ import annotations

import logging
import signal
import subprocess
from typing import Any


def terminate(process: subprocess.Popen[Any], timeout: float, log: logging.Logger,
              what: str) -> int:
    """Stop ``process``: SIGTERM, SIGKILL if it is still running ``timeout`` seconds
    later; always reaped. Returns its exit status; ``what`` names it in the log."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s still running %g s after SIGTERM; SIGKILL", what, timeout)
            process.kill()
            process.wait()
    log.info("%s stopped (exit status %s)", what, process.returncode)
    return process.returncode
