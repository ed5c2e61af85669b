#!/usr/bin/env bash
# Elastic Beanstalk has no release phase: apply migrations before the new
# version starts. Environment properties are not exported to hooks, so read them.
set -euo pipefail
cd /var/app/staging
eval "$(/opt/elasticbeanstalk/bin/get-config environment | python3 -c '
import json, shlex, sys
for name, value in json.load(sys.stdin).items():
    print(f"export {name}={shlex.quote(value)}")
')"
exec /var/app/venv/*/bin/flask --app app dxc migrate
