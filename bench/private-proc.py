"""PID 1 of a private pid namespace for a bench or soak run: runs the command and reaps every orphan.

    unshare --pid --fork --mount-proc python3 bench/private-proc.py npm run bench

In its own pid namespace the daemon's tick reads only the run's processes, as on a quiet machine,
whatever else the host runs. Without a reaping PID 1 (npm is not one) every orphan of a crash-looping
app stays a zombie, and the daemon would scan, and keep a descriptor for, each of them.
"""
import os
import signal
import subprocess
import sys

child = subprocess.Popen(sys.argv[1:])
signal.signal(signal.SIGINT, lambda *_: child.send_signal(signal.SIGINT))
signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
while True:
    pid, status = os.wait()
    if pid == child.pid:
        sys.exit(os.waitstatus_to_exitcode(status))
