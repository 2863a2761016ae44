#!/usr/bin/env bash
# Start the head node of an actorflow Ray cluster, with token authentication.
#   deployments/ray-head.sh [EXTRA ray start ARGS…]     e.g. --num-cpus=4 --resources='{"zone_east": 1}'
# Every node needs the same Python, Ray and actorflow versions (pip install . on each).
set -euo pipefail
export RAY_AUTH_MODE=token
# The token is the cluster's shared secret: generated once here (~/.ray/auth_token), then
# copied to each worker and client machine, or given to them as RAY_AUTH_TOKEN.
ray get-auth-token --generate >/dev/null
exec ray start --head --port=6379 --dashboard-host=0.0.0.0 --disable-usage-stats "$@"
