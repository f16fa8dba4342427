#!/usr/bin/env bash
# Install what Mizan needs on Debian 12, only when it is missing.
#   scripts/deps.sh build    the packages of DESIGN §9 (build, run, test; Postgres 15 for its specs)
#   scripts/deps.sh npm      plus the npm packages (the example's web UI, the tests' tools)
#   scripts/deps.sh test     plus Debian's chromium (the browser specs) and clang (the fuzzers)
#   scripts/deps.sh bench    plus the benchmark peers (nginx + lua module, lua-cjson, wrk)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_PKGS=(build-essential cmake pkg-config libluajit2-5.1-dev luajit2 libuv1-dev node-llhttp
            lua-busted libssl-dev libhiredis-dev redis-server libsqlite3-dev
            libpq-dev postgresql-server-dev-15 postgresql-15
            libcurl4-openssl-dev libnghttp2-dev libidn2-dev libpsl-dev libunistring-dev
            libssh2-1-dev libzstd-dev libbrotli-dev zlib1g-dev)
# clang with its compiler-rt (libclang_rt.fuzzer, only recommended by clang)
# builds the libFuzzer targets of spec/fuzz
# curl, openssl and python3: the outbound HTTP specs' local servers and CA
TEST_PKGS=(chromium clang libclang-rt-14-dev curl openssl python3)
BENCH_PKGS=(nginx libnginx-mod-http-lua lua-cjson wrk curl bc valgrind)

missing() {
  local out=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || out+=("$p")
  done
  echo "${out[@]:-}"
}

apt_install() {
  local need
  need=$(missing "$@")
  [ -z "$need" ] && return 0
  echo "==> installing Debian packages: $need"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $need >/dev/null
}

npm_install() {
  if ! command -v npm >/dev/null 2>&1; then apt_install nodejs npm; fi
  # reinstall when the lock file changed since the last install
  if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.mizan-lock; then
    echo "==> installing npm packages"
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.mizan-lock
  fi
}

case "${1:-build}" in
  build) apt_install "${BUILD_PKGS[@]}" ;;
  npm) apt_install "${BUILD_PKGS[@]}"; npm_install ;;
  test) apt_install "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"; npm_install ;;
  bench) apt_install "${BUILD_PKGS[@]}" "${BENCH_PKGS[@]}" ;;
  *) echo "usage: $0 build|npm|test|bench" >&2; exit 2 ;;
esac
