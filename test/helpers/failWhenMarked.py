"""A user command that fails on demand, for tests that make each step of a lesson fail:

  failWhenMarked.py MARKER PROGRAM [ARGS...]

exits 7 (saying so on stderr) while the file MARKER exists, or MARKER@<satellite> on the
satellite named in $SATELLITE (an examination); otherwise it becomes PROGRAM ARGS."""
import os
import sys

marker, argv = sys.argv[1], sys.argv[2:]
here = os.environ.get("SATELLITE")
for candidate in [marker] + ([f"{marker}@{here}"] if here else []):
    if os.path.exists(candidate):
        print(f"the test made this step fail ({os.path.basename(candidate)})", file=sys.stderr)
        sys.exit(7)
os.execvp(argv[0], argv)
