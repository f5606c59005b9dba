"""Waiting on a guest's console file, for the host-side test scripts.

    from console import wait_text
    wait_text(path, r"END: \\d+ 0", 60)      # a regular expression, per line (re.M)
"""
import os
import re
import time


def wait_text(path, pattern, timeout, poll=0.05):
    """Until @path (a file QEMU writes a console to) matches @pattern, or
    @timeout seconds pass: True if it matched."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and re.search(pattern, open(path, errors="replace").read(), re.M):
            return True
        time.sleep(poll)
    return False
