#!/bin/sh
# Launcher for a fresh machine: sh scripts/run.sh <deno-task> [args...]
#   1. cd to the repository root (the folder above scripts/)
#   2. find Deno 2.9.6 (PATH, npm's global bin, ~/.local/bin), else install it from npm
#      (installing Node and npm with apt-get first when they are missing and we are root)
#   3. export XDG_RUNTIME_DIR (default /tmp)
#   4. check for a WebGPU adapter; without one, install Mesa's software Vulkan driver (as root)
#   5. exec deno task "$@"
# POSIX sh (runs under dash). Every failing step stops with one line naming the step.

DENO_VERSION=2.9.6

say() { printf 'run.sh: %s\n' "$*" >&2; }
die() {
  printf 'run.sh: %s\n' "$*" >&2
  exit 1
}

# -- 1. repository root --------------------------------------------------------------------------
case $0 in
*/*) here=${0%/*} ;;
*) here=. ;;
esac
root=$(CDPATH='' cd -- "$here/.." && pwd) || die "step 1 (repository root): cannot cd to $here/.."
cd -- "$root" || die "step 1 (repository root): cannot cd to $root"
[ -f deno.json ] || die "step 1 (repository root): no deno.json in $root"

if [ $# -eq 0 ]; then
  tasks=$(sed -n '/"tasks"[[:space:]]*:/,/}/s/^[[:space:]]*"\([A-Za-z0-9_-]*\)"[[:space:]]*:.*/\1/p' \
    deno.json | grep -v '^tasks$' | tr '\n' ' ')
  printf 'usage: sh scripts/run.sh <task> [args...]   (tasks: %s)\n' "${tasks% }" >&2
  printf 'e.g.   sh scripts/run.sh demo; sh scripts/run.sh test\n' >&2
  exit 2
fi

is_root=false
[ "$(id -u 2>/dev/null)" = 0 ] && is_root=true

# apt_install STEP WHY PACKAGES...: apt-get update + install as root, or say what to run and stop.
apt_install() {
  step=$1
  why=$2
  shift 2
  if ! $is_root; then
    if command -v apt-get >/dev/null 2>&1; then
      die "$step: $why and not root; run: sudo apt-get update && sudo apt-get install -y $*"
    fi
    die "$step: $why and not root; install with your package manager (as root): $*"
  fi
  command -v apt-get >/dev/null 2>&1 || die "$step: no apt-get here; install these yourself: $*"
  say "$why: apt-get install -y $* ..."
  apt_log=$(mktemp) || die "$step: mktemp failed"
  if ! DEBIAN_FRONTEND=noninteractive apt-get update >"$apt_log" 2>&1; then
    tail -n 5 "$apt_log" >&2
    rm -f "$apt_log"
    die "$step: apt-get update failed"
  fi
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" \
    >"$apt_log" 2>&1; then
    tail -n 5 "$apt_log" >&2
    rm -f "$apt_log"
    die "$step: apt-get install -y $* failed"
  fi
  rm -f "$apt_log"
}

# -- 2. Deno 2.9.6 -------------------------------------------------------------------------------
is_wanted_deno() { # $1: a deno executable
  [ -x "$1" ] || return 1
  case $("$1" --version 2>/dev/null | head -n 1) in
  "deno $DENO_VERSION" | "deno $DENO_VERSION "*) return 0 ;;
  esac
  return 1
}

find_deno() { # sets $deno
  deno=
  npm_bin=
  if command -v npm >/dev/null 2>&1; then
    npm_prefix=$(npm prefix -g 2>/dev/null) && npm_bin=$npm_prefix/bin
  fi
  for d in "$(command -v deno 2>/dev/null)" "$npm_bin/deno" "${HOME:-/nonexistent}/.local/bin/deno" \
    "${HOME:-/nonexistent}/.deno/bin/deno"; do
    case $d in '' | /deno) continue ;; esac
    if is_wanted_deno "$d"; then
      deno=$d
      return 0
    fi
  done
  return 1
}

if ! find_deno; then
  step="step 2 (Deno $DENO_VERSION)"
  if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    apt_install "$step" "no node/npm" nodejs npm
    command -v npm >/dev/null 2>&1 || die "$step: npm still missing after apt-get install"
  fi
  npm_log=$(mktemp) || die "$step: mktemp failed"
  # npm_deno [npm args...]: npm i -g deno@VERSION, with then without --allow-scripts (not retried
  # after a TLS error, which npm already retried for a minute); output in $npm_log
  npm_deno() {
    npm i -g "$@" --allow-scripts=deno "deno@$DENO_VERSION" >"$npm_log" 2>&1 && return 0
    tls_error && return 1
    npm i -g "$@" "deno@$DENO_VERSION" >"$npm_log" 2>&1
  }
  npm_failed() { # $1: what failed
    tail -n 8 "$npm_log" >&2
    rm -f "$npm_log"
    die "$step: $1 failed (node $(node --version 2>/dev/null), npm $(npm --version 2>/dev/null))"
  }
  tls_error() { grep -qE 'SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY_LEAF' "$npm_log"; }
  tls_die() {
    rm -f "$npm_log"
    die "$step: npm rejects the registry's TLS certificate ($1): a proxy re-signs HTTPS here? Put its CA certificate (PEM) in a file and set NODE_EXTRA_CA_CERTS to it"
  }
  say "installing Deno $DENO_VERSION from npm ..."
  if npm_deno; then
    :
  elif tls_error && [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s /etc/ssl/certs/ca-certificates.crt ]; then
    # Node trusts only its built-in CAs; behind a proxy that re-signs HTTPS, the proxy's CA is
    # usually in the system store. Deno honours NODE_EXTRA_CA_CERTS too (npm packages of the tasks).
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
    export NODE_EXTRA_CA_CERTS
    say "npm rejected the registry's TLS certificate; retrying with NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS (the system CA store; set it yourself for later runs) ..."
    npm_deno || {
      tls_error && tls_die "even with the system CA store"
      npm_failed "npm i -g deno@$DENO_VERSION"
    }
  elif tls_error; then
    tls_die "$(grep -oE '[A-Z_]*(SELF_SIGNED|UNABLE_TO)[A-Z_]*' "$npm_log" | head -n 1)"
  elif ! $is_root && grep -qiE 'EACCES|EPERM|permission denied' "$npm_log"; then
    prefix=${HOME:?HOME is not set}/.local
    say "no permission for npm's global prefix; installing Deno $DENO_VERSION to $prefix instead ..."
    npm_deno --prefix "$prefix" || npm_failed "npm i -g --prefix $prefix deno@$DENO_VERSION"
    say "installed $prefix/bin/deno (add $prefix/bin to PATH to use it directly)"
  else
    npm_failed "npm i -g deno@$DENO_VERSION"
  fi
  rm -f "$npm_log"
  find_deno || die "$step: npm finished but no working deno $DENO_VERSION was found (PATH, $(npm prefix -g 2>/dev/null)/bin, ~/.local/bin)"
fi
# `deno task` and the tests spawn `deno` by name: put the one we found first on PATH.
PATH=$(dirname -- "$deno"):$PATH
export PATH
say "using Deno $DENO_VERSION at $deno"

# -- 3. environment ------------------------------------------------------------------------------
XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
export XDG_RUNTIME_DIR
[ -d "$XDG_RUNTIME_DIR" ] || die "step 3 (XDG_RUNTIME_DIR): $XDG_RUNTIME_DIR is not a directory"
env_note="XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR"
# Deno trusts only its built-in (Mozilla) CAs, unlike apt, curl and Debian's node: where a proxy
# re-signs HTTPS with a CA from the system store, its npm downloads fail ("UnknownIssuer"). Trust
# the system store as well, unless the caller chose a store or extra CAs.
if [ -z "${DENO_TLS_CA_STORE:-}" ] && [ -z "${NODE_EXTRA_CA_CERTS:-}" ] &&
  [ -s /etc/ssl/certs/ca-certificates.crt ]; then
  DENO_TLS_CA_STORE=mozilla,system
  export DENO_TLS_CA_STORE
  env_note="$env_note, DENO_TLS_CA_STORE=$DENO_TLS_CA_STORE"
fi
say "environment: $env_note"

# -- 4. WebGPU adapter ---------------------------------------------------------------------------
# Prints the adapter's description on stdout; exit 0 = adapter, 3 = none, other = deno failed.
# stderr (Mesa's warnings, deno's errors) is kept in $probe_err and shown only when it matters.
probe_err=$(mktemp) || die "step 4 (WebGPU adapter): mktemp failed"
probe_adapter() {
  deno eval --quiet --no-config --no-lock \
    'const a = await navigator.gpu?.requestAdapter();
     if (!a) Deno.exit(3);
     console.log(a.info?.description || a.info?.vendor || "unknown");' 2>"$probe_err"
}
if ! adapter=$(probe_adapter); then
  apt_install "step 4 (WebGPU adapter)" "no WebGPU adapter found" mesa-vulkan-drivers libvulkan1
  if ! adapter=$(probe_adapter); then
    tail -n 3 "$probe_err" >&2
    rm -f "$probe_err"
    die "step 4 (WebGPU adapter): still no WebGPU adapter after installing mesa-vulkan-drivers libvulkan1"
  fi
fi
rm -f "$probe_err"
say "WebGPU adapter: $adapter"

# -- 5. run the task -----------------------------------------------------------------------------
say "deno task $*"
exec deno task "$@"
