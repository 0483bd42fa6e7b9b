#!/usr/bin/env bash
# `npm test`'s pretest: the system packages the tests use for real (PostgreSQL,
# bubblewrap and python3-seccomp, the language runtimes of code_exec_*), then
# the Temporal CLI. With the argument `cluster` (`npm test`, `test:cluster`), also
# the Temporal server that docker-compose.yml runs (dev/temporal-server.ts).
# Installs what is missing when run as root (CI, a fresh machine); otherwise
# says what to install. Fast when everything is present.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

missing=()
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
command -v bwrap >/dev/null || missing+=(bubblewrap)
# The sandbox's seccomp filter is compiled with libseccomp's binding for Debian's python3.
/usr/bin/python3 -c 'import seccomp' 2>/dev/null || missing+=(python3-seccomp)
command -v setpriv >/dev/null || missing+=(util-linux)
# The sandbox sees only system runtimes (under /usr), not pyenv/nvm ones in a home folder.
[ -x /usr/bin/ruby ] || missing+=(ruby)
[ -x /usr/bin/python3 ] || missing+=(python3)
# Debian 12's Go is 1.19: dev/go-toolchain.ts bootstraps the newer toolchain the builds need.
[ -x /usr/bin/go ] || [ -x /usr/local/go/bin/go ] || missing+=(golang-go)

if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "The tests need these Debian packages: ${missing[*]}" >&2
    echo "Install them (sudo apt-get install ${missing[*]}) and run npm test again." >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Found, cached, or built with `go install` (several minutes the first time).
echo "Temporal CLI: $(npx tsx dev/temporal-cli.ts)"
if [ "${1:-}" = cluster ]; then
  # Cached, or built with `go install` (about 6 minutes on 2 cores the first time).
  echo "Temporal server: $(npx tsx dev/temporal-server.ts)"
fi
