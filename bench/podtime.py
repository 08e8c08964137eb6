"""Time one pod start: run CMD, read its stdout (stderr merged) line by line, and print two
numbers in seconds: when a line equal to MARKER appeared, and when CMD exited.

usage: podtime.py MARKER CMD...

The clock starts just before the process is spawned, so the interpreter's own start-up is not
counted. Exits 1 (printing what CMD wrote) when CMD fails or never prints MARKER.
"""

import subprocess
import sys
import time


def main():
    marker, cmd = sys.argv[1].encode(), sys.argv[2:]
    seen = None
    out = []
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for line in proc.stdout:
        if seen is None and line.rstrip(b"\r\n") == marker:
            seen = time.monotonic() - t0
        out.append(line)
    rc = proc.wait()
    done = time.monotonic() - t0
    if rc != 0 or seen is None:
        sys.stderr.buffer.write(b"".join(out[-20:]))
        sys.stderr.write(f"podtime: exit {rc}, marker {'seen' if seen else 'not seen'}\n")
        sys.exit(1)
    print(f"{seen:.6f} {done:.6f}")


if __name__ == "__main__":
    main()
