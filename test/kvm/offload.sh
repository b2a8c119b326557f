#!/bin/bash
# offload.sh - runs INSIDE the kvm lab's guest (../shared/labs/kvm/run.sh: Debian's 6.1 kernel, which has flowtables):
# sluice's own counter and quota tables (the scripts test/kvm/offload.test.ts writes from src/, in $TABLES) beside a
# flowtable layout, and what the client really moved next to what sluice counted, for TCP and UDP, each direction.
#
#   LAYOUT   opennds  openNDS 10.3.1's split flowtables (ndsftINC on the WAN, ndsftOUT on br-lan), as libopennds.sh
#                     writes them (the shape of ../shared/labs/kvm/examples/flowtable-counters.sh)
#            single   firewall4's flow_offloading: one flowtable on both devices, `flow offload` in forward
# HELPER: offload-peer.py. Each line of $KVM_OUT/offload.txt: `<layout> <case> moved=<bytes the client moved at IP level> counted=<sluice's
# count> [quota=<limit>] [offloaded=<conntrack entries flagged OFFLOAD>]`, for the test to read.
set -u -o pipefail
export LC_ALL=C
OUT=${KVM_OUT:-/tmp}/offload.txt
C_IP=10.99.0.100 C_MAC=02:00:00:00:0c:01 UP_IP=10.99.1.2
R="ip netns exec ko-rt"
say() { echo "$*" | tee -a "$OUT"; }
die() { say "ERROR: $*"; exit 1; }

topology() {
	for n in ko-up ko-rt ko-c; do ip netns add $n || die "netns $n"; ip -n $n link set lo up; done
	for n in ko-up ko-rt ko-c; do
		ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	done
	ip link add rt-wan netns ko-rt type veth peer name up-wan netns ko-up
	ip link add rt-lan0 netns ko-rt type veth peer name eth0 netns ko-c
	ip -n ko-rt link add br-lan type bridge
	ip -n ko-rt link set rt-lan0 master br-lan
	ip -n ko-c link set eth0 address $C_MAC
	ip -n ko-rt addr add 10.99.1.1/24 dev rt-wan
	ip -n ko-rt addr add 10.99.0.1/24 dev br-lan
	ip -n ko-up addr add $UP_IP/24 dev up-wan
	ip -n ko-c addr add $C_IP/24 dev eth0
	for l in rt-wan rt-lan0 br-lan; do ip -n ko-rt link set $l up; done
	ip -n ko-up link set up-wan up
	ip -n ko-c link set eth0 up
	ip -n ko-rt route add default via $UP_IP
	ip -n ko-up route add 10.99.0.0/24 via 10.99.1.1
	ip -n ko-c route add default via 10.99.0.1
	$R sysctl -qw net.ipv4.ip_forward=1
	server
}

server() { # (re)starts the upstream's server: a UDP download it was asked for goes on until it has sent it all
	[ -n "${SRV:-}" ] && { kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null; }
	ip netns exec ko-up python3 "$HELPER" server $UP_IP >>/tmp/ko-srv.log 2>&1 &
	SRV=$!
	for _ in $(seq 100); do ip netns exec ko-c python3 "$HELPER" ping $UP_IP && return 0; sleep 0.2; done
	die "server not up"
}

layout() { # LAYOUT
	case $1 in
	single)
		$R nft -f - <<EOT || die "single flowtable"
table inet fw {
  flowtable ft { hook ingress priority -100; devices = { rt-wan, br-lan }; }
  chain forward { type filter hook forward priority -100; policy accept; meta l4proto { tcp, udp } flow offload @ft counter; }
}
EOT
		;;
	opennds)
		$R nft -f - <<EOT || die "opennds flowtables"
table ip nds_filter {
  flowtable ndsftOUT { hook ingress priority -100; devices = { br-lan }; }
  chain ndsFWD { type filter hook forward priority -100; iifname "br-lan" counter jump nds_ft_OUT; }
  chain nds_ft_OUT { meta l4proto { tcp, udp } flow offload @ndsftOUT counter; counter return; }
}
table ip nds_mangle {
  flowtable ndsftINC { hook ingress priority -100; devices = { rt-wan }; }
  chain ndsPOST { type filter hook forward priority -100; oifname "br-lan" counter jump ndsINC; }
  chain ndsINC { oifname "br-lan" counter jump nds_ft_INC; }
  chain nds_ft_INC { meta l4proto { tcp, udp } flow offload @ndsftINC counter; counter return; }
}
EOT
		;;
	esac
}

# gate: the portal's filter, a forward chain that drops the LAN's clients but the authenticated ones (set `ok`)
gate() {
	$R nft -f - <<EOT || die "gate"
table ip gate {
  set ok { type ipv4_addr; }
  chain portal { type filter hook forward priority 0; policy accept; ip saddr 10.99.0.0/24 ip saddr != @ok drop; ip daddr 10.99.0.0/24 ip daddr != @ok drop; }
}
EOT
	$R nft add element ip gate ok "{ $C_IP }"
}

fresh() { # LAYOUT [QUOTA]
	$R nft flush ruleset
	$R conntrack -F >/dev/null 2>&1
	$R nft -f "$TABLES/counters.nft" || die "sluice counters"
	[ -n "${2:-}" ] && { $R nft -f "$TABLES/quota-$2.nft" || die "sluice quota"; }
	gate
	layout "$1"
}

counted() { # up|down -> IP-level bytes (the download counter less 14 a packet, as sluice's scanner reads it)
	local name=cu_020000000c01
	[ "$1" = down ] && name=cd_020000000c01
	$R nft list counter netdev sluice_count $name | awk '/packets/ { for (i = 1; i <= NF; i++) { if ($i == "packets") p = $(i+1); if ($i == "bytes") b = $(i+1) } } END { print (dir == "down" ? b - 14 * p : b) }' dir="$1"
}
offloaded() { $R conntrack -L 2>/dev/null | grep -c OFFLOAD; }

one() { # LAYOUT PROTO DIR BYTES
	local moved
	fresh "$1"
	read -r rx tx < <(ip netns exec ko-c python3 "$HELPER" client $UP_IP "$2" "$3" "$4") || die "client $2 $3"
	moved=$rx
	[ "$3" = up ] && moved=$tx
	say "$1 $2-$3 moved=$moved counted=$(counted "$3") offloaded=$(offloaded)"
}

quota() { # LAYOUT LIMIT BYTES: a download through a quota of LIMIT bytes
	local moved
	fresh "$1" "$2"
	read -r rx tx < <(ip netns exec ko-c python3 "$HELPER" client $UP_IP tcp down "$3" 15) || die "client quota"
	say "$1 tcp-quota moved=$((rx + tx)) counted=$(($(counted down) + $(counted up))) quota=$2 offloaded=$(offloaded)"
}

ended() { # LAYOUT PROTO: the gate closes mid-download (a deauth), then sluice's session-end flush deletes the flows
	local before after
	fresh "$1"
	ip netns exec ko-c python3 "$HELPER" client $UP_IP "$2" down 400000000 10 >/tmp/ko-end.txt 2>&1 &
	local cpid=$!
	sleep 2
	say "# $1 $2 during the download: $(offloaded) conntrack entries flagged OFFLOAD; $($R conntrack -L 2>/dev/null | grep -c 10.99.0.100) of the client's"
	$R nft delete element ip gate ok "{ $C_IP }"
	sleep 1
	before=$(counted down)
	sleep 2
	after=$(counted down)
	say "$1 $2-gate-closed moved=$((after - before)) counted=$after offloaded=$(offloaded)"
	$R conntrack -D -s $C_IP >/dev/null 2>&1
	$R conntrack -D -d $C_IP >/dev/null 2>&1
	sleep 1
	before=$(counted down)
	sleep 2
	after=$(counted down)
	say "$1 $2-gate-closed-flushed moved=$((after - before)) counted=$after offloaded=$(offloaded)"
	wait $cpid 2>/dev/null
	# The 400 MB the server was asked for would flow on into the next cases (and their counts): a fresh server,
	# reached through the gate opened again.
	$R nft add element ip gate ok "{ $C_IP }"
	server
	grep -q Traceback /tmp/ko-end.txt && { say "# client failed: $(tail -1 /tmp/ko-end.txt)"; $R ip neigh | tee -a "$OUT"; $R conntrack -L 2>&1 | tee -a "$OUT"; }
}

: >"$OUT"
say "# kernel $(uname -r); nft $(nft --version)"
topology
for l in ${LAYOUTS:-opennds single}; do
	for c in ${CASES:-tcp-down tcp-up udp-down udp-up quota ended-tcp ended-udp}; do
		case $c in
		quota) quota $l 5242880 20000000 ;;
		ended-tcp) ended $l tcp ;;
		ended-udp) ended $l udp ;;
		*) one $l "${c%-*}" "${c#*-}" $([ "${c#*-}" = down ] && echo 20000000 || echo 5000000) ;;
		esac
	done
done
kill $SRV 2>/dev/null
for n in ko-c ko-rt ko-up; do ip netns del $n; done
say "# done"
