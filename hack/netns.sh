#!/usr/bin/env bash
# hack/netns.sh CMD [ARG...]: runs CMD in a private network namespace in which the local cluster's
# pod network (10.244.0.0/16, kwok's --cidr) is local, like 127.0.0.0/8: a process may bind any pod IP
# and every connection to one stays on this machine's loopback interface.
#
# Why not pod IPs in 127.0.0.0/8: Kubernetes refuses loopback addresses in EndpointSlices (and
# Endpoints), so no proxy would ever learn a pod's address. In a namespace of its own, the pod network
# needs no change to the machine's network, is gone when the last process in it exits, and two runs
# on one machine never see each other's pods.
#
# Nothing in the namespace reaches another host: Go modules and Debian packages are fetched before
# entering it (hack/e2e.sh, hack/demo.sh). Root uses `unshare --net`; another user a user namespace
# too (`unshare --map-root-user`), where the kernel allows it.
set -euo pipefail
POD_CIDR=${POD_CIDR:-10.244.0.0/16}
if [ "${PENNANT_NETNS:-}" = "$POD_CIDR" ]; then exec "$@"; fi # already inside
"$(dirname "$0")/deps.sh"
inner='ip link set lo up && ip route add local "$POD_CIDR" dev lo && exec "$@"'
as_user=()
[ "$(id -u)" = 0 ] || as_user=(--map-root-user)
export POD_CIDR PENNANT_NETNS=$POD_CIDR
exec unshare "${as_user[@]}" --net -- bash -c "$inner" netns "$@"
