"""Start, stop and "is it up" for the library's web application, as a satellite's own
service (webServer.kind: own). lessonplan gives PORT and LESSON_DIR (the lesson link);
--state-dir holds the pid file and the log, one of each per port: the instance users reach and
the examination instance beside it (webServer.examination) share the same commands.

  service.py start --state-dir D    starts serve.py in the background, returns once it answers
  service.py stop --state-dir D     stops it (SIGTERM), returns once it is gone
  service.py isup --state-dir D     exit 0 while it runs and answers /health, else 1"""
import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("action", choices=["start", "stop", "isup"])
parser.add_argument("--state-dir", required=True)
args = parser.parse_args()
state = Path(args.state_dir)
port = int(os.environ["PORT"])
pid_file = state / f"library-{port}.pid"
log_file = state / f"library-{port}.log"


def running_pid():
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    # Once stopped, the app waits as a zombie until init collects it, which some inits do only
    # now and then (the app's parent, service.py start, is gone): a zombie serves nobody.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return pid
    return None if state == "Z" else pid


def answers() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


if args.action == "isup":
    sys.exit(0 if running_pid() and answers() else 1)

if args.action == "stop":
    pid = running_pid()
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if running_pid() is None:
                break
            time.sleep(0.1)
        else:
            print(f"the library app (pid {pid}) did not stop", file=sys.stderr)
            sys.exit(1)
    pid_file.unlink(missing_ok=True)
    print("stopped" if pid else "not running")
    sys.exit(0)

# start
if running_pid():
    print("already running")
    sys.exit(0)
state.mkdir(parents=True, exist_ok=True)
log = open(log_file, "ab")
child = subprocess.Popen(
    [sys.executable, "-B", str(Path(__file__).with_name("serve.py")), "--port", str(port), "--lesson", os.environ["LESSON_DIR"]],
    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
)
pid_file.write_text(str(child.pid))
for _ in range(100):
    if child.poll() is not None:
        print(f"the library app exited with status {child.returncode}; see {log_file}", file=sys.stderr)
        sys.exit(1)
    if answers():
        print(f"serving lesson {os.environ.get('LESSON_ID', '?')} on port {port}")
        sys.exit(0)
    time.sleep(0.1)
print("the library app did not answer within 10 s", file=sys.stderr)
sys.exit(1)
