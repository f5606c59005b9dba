#!/usr/bin/python3
"""TAP: guest-tests/qmp.py turns a QMP connection that QEMU drops into
QMPError, which its callers handle (xen-demo reports a failed run), not a
crash.  A fake server greets, then closes with the client's
qmp_capabilities unread (the peer sees ECONNRESET), as QEMU does when it
opens its QMP socket and then refuses its command line (CI, 2026-12-05:
test-slurm's task with an unknown CPU model left no results)."""
import os
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmp import QMP, QMPError  # noqa: E402
from tap import done, ok  # noqa: E402


def fake(path, unread):
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)

    def serve():
        c, _ = srv.accept()
        c.sendall(b'{"QMP": {}}\n')
        if not unread:
            c.recv(4096)
        time.sleep(0.3)
        c.close()
        srv.close()
    threading.Thread(target=serve, daemon=True).start()


with tempfile.TemporaryDirectory() as tmp:
    for unread, what in ((True, "reset (its command unread)"), (False, "closed")):
        path = os.path.join(tmp, "q-%d" % unread)
        fake(path, unread)
        try:
            QMP(path, timeout=5)
            got = "no error"
        except QMPError as e:
            got = "QMPError: %s" % e
        except Exception as e:      # noqa: BLE001 - what the test is about
            got = "%s: %s" % (type(e).__name__, e)
        ok(got.startswith("QMPError: QMP connection closed"),
           "a QMP connection %s by the server is a QMPError (%s)" % (what, got))
done()
