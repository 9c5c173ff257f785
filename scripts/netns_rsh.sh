#!/usr/bin/env bash
# Open MPI's remote launcher for scripts/test_multihost.sh: "netns_rsh.sh HOST COMMAND…" runs
# COMMAND in the network namespace that owns HOST's address (10.77.0.1 → mmkd-host-a,
# 10.77.0.2 → mmkd-host-b), as ssh would on another machine.
set -euo pipefail
host=$1; shift
case "$host" in
    10.77.0.1) ns=mmkd-host-a ;;
    10.77.0.2) ns=mmkd-host-b ;;
    *) echo "netns_rsh: unknown host $host" >&2; exit 1 ;;
esac
exec ip netns exec "$ns" sh -c "$*"
