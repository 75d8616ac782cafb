"""Runs a test server and stops it when the test process goes away.

Usage: launcher.py COMMAND [ARGS...]

The server runs in its own process group. This launcher blocks reading
stdin, which is a pipe from the Rust test process; when that pipe closes
(the test dropped its handle, finished, panicked or was killed), the whole
group gets SIGTERM and, two seconds later, SIGKILL.
"""
import os
import signal
import subprocess
import sys
import threading
import time


def main():
    server = subprocess.Popen(sys.argv[1:], start_new_session=True, stdin=subprocess.DEVNULL)

    def stop():
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(server.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.time() + 2
            while time.time() < deadline:
                if server.poll() is not None:
                    # Children of the server may outlive it; sweep the group.
                    try:
                        os.killpg(server.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    return
                time.sleep(0.05)

    def watch_parent():
        sys.stdin.buffer.read()  # returns at EOF: the test process let go
        stop()
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    code = server.wait()
    os._exit(code)


if __name__ == "__main__":
    main()
