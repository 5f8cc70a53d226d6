"""Killing a command while it runs, for the trials that SIGKILL a run and run it again."""

import os
import signal
import subprocess
import time
from collections.abc import Callable


def kill_while_running(
    command: list[str], delay: float, fresh: Callable[[], object], attempts: int = 6
) -> bool:
    """Start ``command`` on a ``fresh()`` warehouse and SIGKILL it after ``delay`` seconds; if it
    had already ended (this run was quicker than the one timed), start again with half the delay.
    True once a kill hit a running process."""
    for _ in range(attempts):
        fresh()
        process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return True
        delay /= 2
    return False
