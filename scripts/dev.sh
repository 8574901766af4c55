#!/usr/bin/env bash
# Set up everything the hub needs on a Debian 12 machine (as root), then run one job:
#   bash scripts/dev.sh demo   - the hub's main loop on the embedded default (SQLite, local SMTP)
#   bash scripts/dev.sh test   - linters, type checks and the whole test suite (SQLite + PostgreSQL)
#   bash scripts/dev.sh setup  - only the set-up
# Safe to run again: each step is skipped when it is already done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
DEBIAN_PACKAGES=(python3 python3-venv python3-dev gcc gnupg openssl sqlite3
                 dovecot-imapd dovecot-lmtpd postgresql postgresql-client ca-certificates
                 chromium)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root for: $*"; exit 1; fi
}

install_debian_packages() {
  local missing=()
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

python_bin() {
  # Debian 12's python3 is 3.11; a pyenv or other 3.11 on PATH is used as it is.
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$candidate"; return
    fi
  done
  log "Python 3.11 is required"; exit 1
}

setup_venv() {
  local stamp="$VENV/.installed" want
  want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating the virtual environment in .venv"
    "$(python_bin)" -m venv "$VENV"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing the hub and its Python dependencies into .venv"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[dev]"
    echo "$want" > "$stamp"
  fi
}

ensure_postgres() {
  # The tests use the PostgreSQL server on 127.0.0.1:5432 as postgres without a password.
  if ! command -v pg_lsclusters >/dev/null; then return; fi
  if ! pg_lsclusters -h 2>/dev/null | grep -q online; then
    local version
    version="$(ls /etc/postgresql | sort -V | tail -n1)"
    log "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  fi
  for _ in $(seq 1 30); do
    if psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then return; fi
    if PGCONNECT_TIMEOUT=2 psql -h 127.0.0.1 -U postgres -d postgres -w -Atc 'select 1' 2>&1 \
        | grep -q "password authentication failed\|no password supplied"; then
      # a fresh Debian cluster wants a password on 127.0.0.1: trust local connections (test machine)
      local hba
      hba="$(ls /etc/postgresql/*/main/pg_hba.conf | sort -V | tail -n1)"
      log "allowing password-less local connections in $hba (for the tests)"
      as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
      as_root pg_ctlcluster --skip-systemctl-redirect "$(basename "$(dirname "$(dirname "$hba")")")" main reload
    fi
    sleep 1
  done
  log "PostgreSQL does not answer on 127.0.0.1:5432"; exit 1
}

setup() {
  install_debian_packages
  setup_venv
}

run_tests() {
  ensure_postgres
  log "ruff"
  "$VENV/bin/ruff" check hub tests bench
  "$VENV/bin/ruff" format --check hub tests bench
  log "mypy"
  "$VENV/bin/mypy" hub
  log "pytest"
  "$VENV/bin/pytest" -p no:cacheprovider "$@"
}

main() {
  local job="${1:-}"
  shift || true
  case "$job" in
    setup) setup ;;
    demo) setup; exec "$VENV/bin/hub" demo "$@" ;;
    test) setup; run_tests "$@" ;;
    *) echo "usage: bash scripts/dev.sh {demo|test|setup} [args]" >&2; exit 64 ;;
  esac
}

main "$@"
