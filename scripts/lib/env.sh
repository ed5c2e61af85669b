# Shared by scripts/serve and scripts/test: a virtualenv in .venv with the
# pinned requirements, reinstalled only when a requirements file changed.
# shellcheck shell=bash

ensure_venv() {
    local requirements=$1
    local python=${PYTHON:-python3}
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "dxc-server needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
        exit 1
    fi
    [ -x .venv/bin/python ] || "$python" -m venv .venv
    local stamp
    stamp=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
    if [ "$(cat .venv/.requirements 2>/dev/null)" != "$stamp-$requirements" ]; then
        .venv/bin/python -m pip install --quiet --upgrade pip
        .venv/bin/python -m pip install --quiet -r "$requirements"
        echo "$stamp-$requirements" > .venv/.requirements
    fi
}
