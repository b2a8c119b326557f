#!/bin/sh
# busybox udhcpc hook for lab clients: set the leased address and the default route, nothing else
# (no resolv.conf: clients reach the upstream by address, and /etc is the host's).
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$subnet" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    ;;
esac
exit 0
