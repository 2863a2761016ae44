#!/usr/bin/env bash
# Start the head node of an actorflow Ray cluster, with token authentication.
#   deployments/ray-head.sh [EXTRA ray start ARGS…]     e.g. --num-cpus=4 --resources='{"zone_east": 1}'
# Every node needs the same Python, Ray and actorflow versions (pip install . on each).
#
# Safe by default: the dashboard, which also takes job submissions (running code on the
# cluster), listens on 127.0.0.1 only; reach it through an SSH tunnel, or open it on purpose:
#   RAY_DASHBOARD_HOST=0.0.0.0   listen on every interface (then firewall it to trusted hosts)
#   RAY_PORT=6379                GCS port that workers and clients join (reachable from the nodes only)
#   RAY_DASHBOARD_PORT=8265      dashboard / job API port
#   RAY_CLIENT_SERVER_PORT=10001 Ray Client (ray://) port
set -euo pipefail
export RAY_AUTH_MODE=token
# The token is the cluster's shared secret. With RAY_AUTH_TOKEN set it is used as is;
# otherwise it is generated once into ~/.ray/auth_token (mode 600: keep it so), then copied
# to each worker and client machine, or given to them as RAY_AUTH_TOKEN.
if [[ -z "${RAY_AUTH_TOKEN:-}" ]]; then
  ray get-auth-token --generate >/dev/null
  chmod 600 "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}" 2>/dev/null || true
fi
exec ray start --head \
  --port="${RAY_PORT:-6379}" \
  --dashboard-host="${RAY_DASHBOARD_HOST:-127.0.0.1}" \
  --dashboard-port="${RAY_DASHBOARD_PORT:-8265}" \
  --ray-client-server-port="${RAY_CLIENT_SERVER_PORT:-10001}" \
  --disable-usage-stats "$@"
