#!/usr/bin/python3
"""Writes a file to standard output in chunks with a pause after each, so
an import reading it from a pipe runs for a while (the kill, fault-loop
and rotation tests). Stops quietly when the reader goes away.
usage: feed.py FILE CHUNK_BYTES PAUSE_SECONDS
"""
import sys
import time

with open(sys.argv[1], "rb") as f:
    n, pause = int(sys.argv[2]), float(sys.argv[3])
    while True:
        b = f.read(n)
        if not b:
            break
        try:
            sys.stdout.buffer.write(b)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            break
        time.sleep(pause)
