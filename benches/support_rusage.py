"""Runs a command and prints its wall time and peak resident memory (the child's ru_maxrss) as
JSON. Used by benches/export.rs to measure fieldvisit and its peer the same way."""
import json
import resource
import subprocess
import sys
import time

start = time.monotonic()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
secs = time.monotonic() - start
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"rc": done.returncode, "secs": secs, "peak_mb": peak_kb / 1024}))
