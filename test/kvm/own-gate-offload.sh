#!/bin/bash
# own-gate-offload.sh - runs INSIDE the kvm lab's guest (../shared/labs/kvm/run.sh: Debian's 6.1 kernel, which has
# flowtables): sluice's own gate (portal 'sluice') with firewall4's flow offloading, in the files
# test/kvm/own-gate-offload.test.ts writes from src/ into $TABLES:
#   tables.nft        what the daemon installs at start: the own gate (inet sluice_portal), the counters and the
#                     quota, none of them holding the device (not the IPv6 gate: the test says why)
#   fw4.nft           firewall4's table with `flow_offloading` on: its one flowtable on the WAN and br-lan, `flow
#                     offload` first in its forward chain
#   grant.nft         a time plan's grant of the client (its counters, the gate's set elements), one transaction
#   grant-data.nft    the same with a quota far above what moves; grant-quota.nft with a 5 MiB one ($QUOTA)
#   close.nft         the close of a data plan's device: the gate's elements, one transaction; then its conntrack
#                     entries deleted as portal/flow-flush.ts does (`conntrack -D -s <ip>`, `-D -d <ip>`, the address
#                     the router's neighbour table holds)
#   close-later.nft   2 s after the deletes (gate/own-valve.ts): its quota and counters, one more transaction
# HELPER: offload-peer.py. $CU / $CD: the client's counters' names. Each line of $KVM_OUT/own-gate-offload.txt:
#   count <case> moved=<bytes the client moved at IP level> counted=<sluice's count> [quota=<limit>] offloaded=<n>
#   close <case> offloaded=<n> nft=<B> gap=<B> first=<B> settled=<B> nft_ms=<ms> flush_ms=<ms> last_ms=<ms> end=<how>
#         entries=<n> deleted=<n> counted_after=<B> passed_span=<B>
# where nft/gap/first/settled are the bytes (frames) the router forwarded that flow's way while the close's nft ran,
# from its end to the conntrack deletes' end (the flush), in the 1.5 s after the flush, and from then to 4 s after;
# last_ms: when the flow last moved, from the flush's end (negative: before it); counted_after: what the device's
# counter of that way counted from just before the close's nft run to just before close-later.nft (IP-level bytes);
# passed_span: the router's bytes that way from before that first reading to after the last (an upper bound).
set -u -o pipefail
export LC_ALL=C
OUT=${KVM_OUT:-/tmp}/own-gate-offload.txt
C_IP=10.99.0.100 C_MAC=02:00:00:00:0c:01 UP_IP=10.99.1.2
R="ip netns exec kg-rt"
say() { echo "$*" | tee -a "$OUT"; }
die() { say "ERROR: $*"; exit 1; }

topology() {
	for n in kg-up kg-rt kg-c; do ip netns add $n || die "netns $n"; ip -n $n link set lo up; done
	for n in kg-up kg-rt kg-c; do
		ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	done
	ip link add rt-wan netns kg-rt type veth peer name up-wan netns kg-up
	ip link add rt-lan0 netns kg-rt type veth peer name eth0 netns kg-c
	ip -n kg-rt link add br-lan type bridge
	ip -n kg-rt link set rt-lan0 master br-lan
	ip -n kg-c link set eth0 address $C_MAC
	ip -n kg-rt addr add 10.99.1.1/24 dev rt-wan
	ip -n kg-rt addr add 10.99.0.1/24 dev br-lan
	ip -n kg-up addr add $UP_IP/24 dev up-wan
	ip -n kg-c addr add $C_IP/24 dev eth0
	for l in rt-wan rt-lan0 br-lan; do ip -n kg-rt link set $l up; done
	ip -n kg-up link set up-wan up
	ip -n kg-c link set eth0 up
	ip -n kg-rt route add default via $UP_IP
	ip -n kg-up route add 10.99.0.0/24 via 10.99.1.1
	ip -n kg-c route add default via 10.99.0.1
	$R sysctl -qw net.ipv4.ip_forward=1
}

server() { # (re)starts the upstream's server (a UDP stream it was asked for goes on until it is stopped)
	[ -n "${SRV:-}" ] && { kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null; }
	ip netns exec kg-up python3 "$HELPER" server $UP_IP >>/tmp/kg-srv.log 2>&1 &
	SRV=$!
}

fresh() { # GRANT: the daemon's tables and fw4's, the device granted by GRANT (a file of $TABLES)
	$R nft flush ruleset
	$R conntrack -F >/dev/null 2>&1
	$R nft -f "$TABLES/tables.nft" || die "sluice's tables"
	$R nft -f "$TABLES/fw4.nft" || die "fw4's table"
	# Unpaid: the upstream is out of reach (the gate's reset), the router's DNS port is not.
	ip netns exec kg-c python3 "$HELPER" ping $UP_IP && die "the unpaid client reached the upstream"
	$R nft -f "$TABLES/$1" || die "grant $1"
	for _ in $(seq 100); do ip netns exec kg-c python3 "$HELPER" ping $UP_IP && return 0; sleep 0.2; done
	die "the granted client does not reach the server"
}

counted() { # up|down -> IP-level bytes (the download counter less 14 a packet, as sluice's scanner reads it)
	local name=$CU
	[ "$1" = down ] && name=$CD
	$R nft list counter netdev sluice_count "$name" | awk '/packets/ { for (i = 1; i <= NF; i++) { if ($i == "packets") p = $(i+1); if ($i == "bytes") b = $(i+1) } } END { print (dir == "down" ? b - 14 * p : b) }' dir="$1"
}
offloaded() { $R conntrack -L 2>/dev/null | grep -c OFFLOAD; }
entries() { $R conntrack -L 2>/dev/null | grep -c "$C_IP"; }

count() { # PROTO DIR BYTES
	local moved
	fresh grant.nft
	read -r rx tx < <(ip netns exec kg-c python3 "$HELPER" client $UP_IP "$1" "$2" "$3") || die "client $1 $2"
	moved=$rx
	[ "$2" = up ] && moved=$tx
	say "count $1-$2 moved=$moved counted=$(counted "$2") offloaded=$(offloaded)"
}

quota() { # BYTES: a download through the grant's quota
	fresh grant-quota.nft
	read -r rx tx < <(ip netns exec kg-c python3 "$HELPER" client $UP_IP tcp down "$1" 15) || die "client quota"
	say "count tcp-quota moved=$((rx + tx)) counted=$(($(counted down) + $(counted up))) quota=$QUOTA offloaded=$(offloaded)"
}

# The bytes the router forwarded towards the client (br-lan's port) and towards the upstream, every 20 ms.
sample() { rm -f /tmp/kg-rate.log; $R python3 "$HELPER" rates /tmp/kg-rate.log rt-lan0 rt-wan & }

windows() { # COLUMN T0 TA T1: the bytes in each window of the sampler's log, and when the flow last moved
	awk -v c="$1" -v t0="$2" -v ta="$3" -v t1="$4" '
		function at(t) { v = 0; for (i = 1; i <= n; i++) if (ts[i] <= t) v = val[i]; return v }
		{ n++; ts[n] = $1; val[n] = $c }
		END {
			last = t0
			for (i = 2; i <= n; i++) if (ts[i] > t0 && val[i] > val[i-1]) last = ts[i]
			printf "nft=%d gap=%d first=%d settled=%d nft_ms=%d flush_ms=%d last_ms=%d", at(ta) - at(t0), at(t1) - at(ta), at(t1 + 1.5) - at(t1), at(t1 + 4) - at(t1 + 1.5), (ta - t0) * 1000, (t1 - ta) * 1000, (last - t1) * 1000
		}' /tmp/kg-rate.log
}

span() { # COLUMN FROM TO: the bytes the sampler saw between two times, as passed_span=<B>
	awk -v c="$1" -v f="$2" -v t="$3" '
		function at(x) { v = 0; for (i = 1; i <= n; i++) if (ts[i] <= x) v = val[i]; return v }
		{ n++; ts[n] = $1; val[n] = $c }
		END { printf "passed_span=%d", at(t) - at(f) }' /tmp/kg-rate.log
}

ended() { # PROTO DIR [noflush|cut]: an offloaded stream, the device closed under it. noflush: the set's elements
	# and the rest of the close's transaction only; cut: a device whose quota had stopped the stream before its close
	local tc t0 ta t1 tl c0 after col=2 off deleted=0 end grant=grant-data.nft what="$1-$2${3:+-$3}"
	[ "$2" = up ] && col=3
	[ "${3:-}" = cut ] && grant=grant-quota.nft
	fresh $grant
	rm -f /tmp/kg-stream.log
	ip netns exec kg-c timeout 120 python3 "$HELPER" stream $UP_IP "$1" "$2" 90 /tmp/kg-stream.log &
	local cpid=$!
	off=0
	for _ in $(seq 40); do sleep 0.25; off=$(offloaded); [ "$off" -gt 0 ] && break; done
	[ "${3:-}" = cut ] && sleep 3 # the quota spent: what the server goes on sending is dropped at br-lan's egress
	sample
	local spid=$!
	# python starts slowly in the emulated guest: the sampler's first lines before the close
	for _ in $(seq 240); do [ "$(wc -l </tmp/kg-rate.log 2>/dev/null || echo 0)" -ge 10 ] && break; sleep 0.25; done
	sleep 1
	[ -n "${KEEP_LOGS:-}" ] && $R conntrack -L >"${KVM_OUT:-/tmp}/ct-before-$what.txt" 2>&1
	tc=$EPOCHREALTIME
	c0=$(counted "$2")
	t0=$EPOCHREALTIME
	$R nft -f "$TABLES/close.nft" || die "close"
	ta=$EPOCHREALTIME
	if [ "${3:-}" != noflush ]; then
		for dir in -s -d; do
			n=$($R conntrack -D $dir $C_IP 2>&1 >/dev/null | sed -n 's/.*: \([0-9]*\) flow entr.*/\1/p')
			deleted=$((deleted + ${n:-0}))
		done
	fi
	t1=$EPOCHREALTIME
	sleep 2
	after=$(($(counted "$2") - c0))
	tl=$EPOCHREALTIME
	$R nft -f "$TABLES/close-later.nft" || die "close-later"
	sleep 2.5
	kill $spid 2>/dev/null; wait $spid 2>/dev/null
	end=$(sed -n 's/^end //p' /tmp/kg-stream.log)
	kill $cpid 2>/dev/null; wait $cpid 2>/dev/null
	[ -n "${KEEP_LOGS:-}" ] && { cp /tmp/kg-rate.log "${KVM_OUT:-/tmp}/rate-$what.log"; echo "$t0 $ta $t1" >>"${KVM_OUT:-/tmp}/rate-$what.log"; $R conntrack -L >>"${KVM_OUT:-/tmp}/rate-$what.log" 2>&1; }
	end=${end:-none}
	say "close $what offloaded=$off $(windows $col "$t0" "$ta" "$t1") end=${end// /_} entries=$(entries) deleted=$deleted counted_after=$after $(span $col "$tc" "$tl")"
	server
}

: >"$OUT"
say "# kernel $(uname -r); nft $(nft --version); up $(cut -d' ' -f1 /proc/uptime) s"
# The gate's expressions (reject, fib, nat, quota, objref) and conntrack's netlink, loaded at once (a failure says
# which is missing, where a rule's load would fail with ENOENT).
modprobe -a nft_reject_inet nft_fib_inet nft_chain_nat nft_nat nft_redir nft_quota nft_objref nft_ct \
	nf_conntrack_netlink || die "modprobe"
topology
server
for c in ${CASES:-tcp-down tcp-up udp-down udp-up quota ended-tcp-down ended-tcp-up ended-udp-down ended-udp-down-noflush ended-udp-down-cut}; do
	say "# $c at $(cut -d' ' -f1 /proc/uptime) s"
	case $c in
	quota) quota 20000000 ;;
	ended-*-*-*) c=${c#ended-}; m=${c##*-}; c=${c%-*}; ended "${c%-*}" "${c#*-}" "$m" ;;
	ended-*) c=${c#ended-}; ended "${c%-*}" "${c#*-}" ;;
	*) count "${c%-*}" "${c#*-}" $([ "${c#*-}" = down ] && echo 20000000 || echo 5000000) ;;
	esac
done
kill $SRV 2>/dev/null
for n in kg-c kg-rt kg-up; do ip netns del $n; done
say "# done; up $(cut -d' ' -f1 /proc/uptime) s"
