#!/usr/bin/env bash
# Join a worker node to the cluster started by ray-head.sh.
#   RAY_AUTH_TOKEN=… deployments/ray-worker.sh HEAD_IP:6379 [EXTRA ray start ARGS…]
#   e.g. deployments/ray-worker.sh 10.0.0.5:6379 --num-cpus=8 --resources='{"zone_west": 1}'
# Without RAY_AUTH_TOKEN the token is read from ~/.ray/auth_token (copy it from the head, and
# keep it private: chmod 600). HEAD_IP:PORT is the head's RAY_PORT (6379 unless changed).
set -euo pipefail
head="${1:?usage: ray-worker.sh HEAD_IP:6379 [ray start args…]}"
shift
export RAY_AUTH_MODE=token
exec ray start --address="$head" --disable-usage-stats "$@"
