#!/usr/bin/env bash
# The end-to-end lab: a real openNDS gating real clients, all inside network namespaces (docs/testing.md).
#
#   lab.sh up [--no-shape] [--rate 8mbit] [--checkinterval N] [--owner PID] [--nodogsplash BIN|--sluice] [--theme HOST:PORT]
#             [--clients N] [--allow-port PORT]…                                                   → prints the lab dir
#     --clients: N client namespaces (default 4, at most 99): MAC 02:00:00:00:0c:<i in hex>, address 10.77.0.<100+i>
#     --sluice: no portal daemon: sluice itself is the gate (main.portal 'sluice'), installed by the test's daemon
#     --nodogsplash: the portal is that nodogsplash binary (a local build: ndsctl next to it) instead of openNDS
#     --theme: openNDS shows sluice's splash (files/usr/lib/opennds/theme_sluice.sh, login_option_enabled 3) pointing
#              at sluice's pay page on HOST:PORT (sluice.http.listen), and clients may reach that port on the router
#     --venue NAME: with --theme, the router is in venue NAME (sluice.main.venue, docs/roaming.md): the ThemeSpec asks
#              sluice over ubus to claim the session of a device it meets (sluice_venue_claim)
#     --ubus BUNDLE: a `ubus` on openNDS's PATH, as a router has: sluice's ubus CLI (BUNDLE's `sluice.mjs ubus`, the
#              real protocol) on the bus whose socket is <labdir>/bus/ubus.sock (where the test starts its ubusd);
#              BUNDLE's directory and <labdir>/bus are bound into the router's mount namespace
#     --allow-port: clients may reach this TCP port on the router before authentication too (users-to-router), as an
#              operator opens TollGate's door (docs/captive-portal.md); repeatable
#     --ipv6: dual-stack, as OpenWrt's LAN is by default: ULA addresses (router fd77::1 on br-lan and fd77:1::1 on the
#              WAN, upstream fd77:1::2, client i fd77::<100+i>), IPv6 forwarding on, no IPv6 filter of the lab's own
#     --opennds-prefix DIR: the portal is the openNDS 10.x installed under DIR (`make install DESTDIR=DIR`, built
#              from its public source outside the repo), bound over Debian's in the router's mount namespace, with
#              the same settings as a UCI file (/etc/config/opennds in a private overlay of the router's /etc)
#     --binauth: Debian's openNDS 9.10 runs the package's BinAuth (files/usr/lib/opennds/binauth_sluice.sh,
#              `BinAuth` in opennds.conf) as docs/quickstart.md step 6 sets it; openNDS 10.x (--opennds-prefix) always
#              does (its UCI `binauth`). Also SLUICE_LAB_BINAUTH=1 in the environment.
#     --bridge NAME: the hotspot's bridge is NAME (default br-lan), as on a café router whose guests are on br-guest;
#              any other name leaves an empty br-lan beside it (the staff LAN, which carries none of the portal's clients)
#     --second-device NAME: the last client is on a second hotspot device NAME outside the bridge (a second SSID's
#              interface, as phy1-ap0), reaching the router's LAN address there by a host route (its address is static)
#     --dhcp-option VALUE: the router's dnsmasq also sends this DHCP option to the LAN (tagged `lan`, the tag OpenWrt's
#              dnsmasq init gives the lan section's range): VALUE as /etc/config/dhcp's dhcp_option holds it; repeatable
#   lab.sh down <labdir>                     stop every process of the lab by PID, delete its namespaces and files
#   lab.sh cleanup-stale                     remove leftovers of labs whose owner process is gone
#   lab.sh opennds-stop|opennds-start <labdir>  (the lab's portal, whichever it is)
#   lab.sh rt <labdir> <cmd...>              run a command inside the router (network + private mount namespace)
#   lab.sh lease <labdir> <i> <address>      client i leases a new address by DHCP (same MAC), leaving its old one
#
# Namespaces are named sl-<id>-{up,rt,c1..c4}; <id> is 6 random hex digits, so a stale lab never collides.
# The router's anchor process (`sleep infinity` under `ip netns exec` + `unshare -m`) holds a mount namespace with a
# private tmpfs /tmp (ndsctl.sock, ndsctl.lock, dhcp.leases, openNDS state) and /etc/netns/<rt>/ bound over /etc;
# everything in the router, ndsctl included, enters it with `nsenter -t <anchor> -m -n`, so labs can coexist.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=sl-
LAN_NET=10.77.0 WAN_NET=10.77.1
NCLIENTS=4

log() { printf '[lab] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

load() {
  LABDIR=${1:?lab dir}
  [ -f "$LABDIR/lab.env" ] || die "$LABDIR is not a lab dir"
  # shellcheck disable=SC1091
  . "$LABDIR/lab.env"
}

# Client i's MAC (lab.ts derives the same): 02:00:00:00:0c:01 … 0c:63.
client_mac() { printf '02:00:00:00:0c:%02x' "$1"; }

rt() { nsenter -t "$(cat "$LABDIR/anchor.pid")" -m -n -- "$@"; }

wait_for() { # wait_for <seconds> <description> <cmd...>
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out waiting for $what"
    sleep 0.1
  done
}

# A zombie counts as gone: our daemons are re-parented to PID 1, which may reap them late.
pid_alive() {
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
  case "$(ps -o stat= -p "$1" 2>/dev/null)" in Z*|'') return 1 ;; esac
}

stop_pid() { # stop_pid <pidfile>: TERM, wait up to 5 s, then KILL
  local file=$1 pid
  pid=$(cat "$file" 2>/dev/null) || return 0
  if pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do pid_alive "$pid" || break; sleep 0.1; done
    pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# OpenWrt's kernel has no br_netfilter; this host's may (built in here), and then a bridge port's packets pass the IP
# hooks at the bridge, before br-lan's netdev ingress, which puts the router's IPv4 prerouting ahead of sluice's
# netdev chains. Off in the router's namespace, as on OpenWrt. This kernel keeps these sysctls per namespace (they go
# with the lab); on one that does not, writing them in the router changes the host's: put back at once, and the lab
# runs with them on.
BRNF_KEYS="net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables net.bridge.bridge-nf-call-arptables"
router_without_br_netfilter() { # <router ns>
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || return 0
  local key host=() i=0
  for key in $BRNF_KEYS; do host+=("$(sysctl -n "$key")"); done
  for key in $BRNF_KEYS; do ip netns exec "$1" sysctl -qw "$key=0"; done
  for key in $BRNF_KEYS; do
    if [ "$(sysctl -n "$key")" != "${host[$i]}" ]; then
      sysctl -qw "$key=${host[$i]}"
      log "br_netfilter's $key is not per namespace on this kernel: the host's left as it was, the router keeps it"
    fi
    i=$((i + 1))
  done
}

# What clients may reach on the router itself: the same rule set (and syntax) for openNDS and nodogsplash.
USERS_TO_ROUTER='FirewallRuleSet users-to-router {
    FirewallRule allow udp port 53
    FirewallRule allow tcp port 53
    FirewallRule allow udp port 67
    FirewallRule allow tcp port 22
    FirewallRule allow tcp port 80
    FirewallRule allow tcp port 443
}'

write_opennds_conf() {
  mkdir -p "$1"
  local theme='' rules=$USERS_TO_ROUTER binauth=''
  # 9.10 runs it with the same arguments as 10.x (src/auth.c binauth_action): the token it keeps serves 9.10's deauths.
  [ "$BINAUTH" = 1 ] && binauth='BinAuth /run/sluice-lab/binauth_sluice.sh'
  if [ -n "$THEME_LISTEN" ]; then
    theme="login_option_enabled 3
themespec_path /run/sluice-lab/theme_sluice.sh"
    rules="${USERS_TO_ROUTER%\}}    FirewallRule allow tcp port ${THEME_LISTEN##*:}
}"
  fi
  cat >"$1/opennds.conf" <<EOF
gatewayinterface $BRIDGE
gatewayname sluice-lab
gatewayfqdn disable
dhcp_default_url_enable 0
gatewayport 2050
checkinterval $CHECKINTERVAL
sessiontimeout 1440
preauthidletimeout 30
authidletimeout 120
allow_preemptive_authentication 1
$theme
$binauth

FirewallRuleSet authenticated-users {
}
FirewallRuleSet preauthenticated-users {
}
$rules
EOF
}

# openNDS 10.x reads its settings from /etc/config/opennds (UCI syntax): the same ones as write_opennds_conf, and the
# BinAuth docs/quickstart.md sets (files/usr/lib/opennds/binauth_sluice.sh instead of openNDS 10's binauth_log.sh).
write_opennds_uci() {
  cat >"$1" <<EOF
config opennds 'setup'
	option enabled '1'
	option gatewayinterface '$BRIDGE'
	option gatewayname 'sluice-lab'
	option gatewayfqdn 'disable'
	option dhcp_default_url_enable '0'
	option gatewayport '2050'
	option checkinterval '$CHECKINTERVAL'
	option sessiontimeout '1440'
	option preauthidletimeout '30'
	option authidletimeout '120'
	option allow_preemptive_authentication '1'
	option binauth '/run/sluice-lab/binauth_sluice.sh'
EOF
  local rules=$USERS_TO_ROUTER
  if [ -n "$THEME_LISTEN" ]; then
    # The pay page's port, as write_opennds_conf opens it for openNDS 9.x. (Not its ThemeSpec splash: the theme asks
    # `uci` for the pay page's address, and a uci stand-in on openNDS 10's PATH would make its scripts take the lab
    # for a UCI system.)
    rules="${USERS_TO_ROUTER%\}}    FirewallRule allow tcp port ${THEME_LISTEN##*:}
}"
  fi
  printf '%s\n' "$rules" | sed -n "s/^ *FirewallRule \(.*\)\$/\tlist users_to_router '\1'/p" >>"$1"
}

# What the router's mount namespace needs to run openNDS 10.x from a prefix (run inside it by the anchor): a private
# overlay on /etc (openNDS 10 reads /etc/config/opennds and appends to /etc/dnsmasq.conf), its binaries and scripts
# bound over Debian's.
write_opennds10_mounts() {
  cat >"$1" <<'EOF'
set -e
P=$1 RT=$2
mkdir -p /run/sluice-lab/etc-up /run/sluice-lab/etc-work
mount -t overlay sluice-lab-etc -o lowerdir=/etc,upperdir=/run/sluice-lab/etc-up,workdir=/run/sluice-lab/etc-work /etc
cp "/etc/netns/$RT/hosts" /etc/hosts
rm -rf /etc/opennds && cp -a "$P/etc/opennds" /etc/opennds
mkdir -p /etc/config && cp /run/sluice-lab/opennds-uci /etc/config/opennds
: >/etc/dnsmasq.conf
mount --bind "$P/usr/bin/opennds" /usr/bin/opennds
mount --bind "$P/usr/bin/ndsctl" /usr/bin/ndsctl
mount --bind "$P/usr/lib/opennds" /usr/lib/opennds
EOF
}

# nodogsplash 5.0.2: no DHCP leases needed (a client is listed once it hits the splash page); all rule sets explicit.
write_nodogsplash_conf() {
  cat >"$1" <<EOF
GatewayInterface $BRIDGE
GatewayAddress $LAN_NET.1
GatewayPort 2050
WebRoot /run/sluice-lab/htdocs
CheckInterval $CHECKINTERVAL
MaxClients 64
PreauthIdleTimeout 30
AuthIdleTimeout 120
FirewallRuleSet authenticated-users {
  FirewallRule allow all
}
FirewallRuleSet preauthenticated-users {
  FirewallRule allow tcp port 53
  FirewallRule allow udp port 53
}
$USERS_TO_ROUTER
EOF
  mkdir -p "$2"
  echo '<html><body>sluice lab splash</body></html>' >"$2/splash.html"
  cp "$2/splash.html" "$2/status.html"
}

nodogsplash_start() {
  local pid
  pid=$(supervise nsenter -t "$(cat "$LABDIR/anchor.pid")" -m -n -- \
    env PATH="/usr/sbin:/usr/bin:/sbin:/bin" /run/sluice-lab/bin/nodogsplash -f -d 3 -c /run/sluice-lab/nodogsplash.conf)
  local deadline=$((SECONDS + 30))
  # The control thread starts after the firewall is complete: an answer on the socket means it is up. Each try is
  # bounded: a connection left in the accept queue (test/e2e/lab.ts ndsctl) is accepted at the next try.
  until rt timeout 10 /run/sluice-lab/bin/ndsctl json >/dev/null 2>&1; do
    pid_alive "$pid" || { tail -n 20 "$LABDIR/opennds.log" >&2; die "nodogsplash exited during start"; }
    [ "$SECONDS" -lt "$deadline" ] || die "nodogsplash did not come up in 30 s (see $LABDIR/opennds.log)"
    sleep 0.2
  done
  log "nodogsplash running (pid $pid)"
}

opennds_start() {
  load "$1"
  # sluice is the gate (main.portal 'sluice'): no portal daemon, the test's sluice installs the gate.
  if [ "${PORTAL:-opennds}" = sluice ]; then return; fi
  if [ "${PORTAL:-opennds}" = nodogsplash ]; then nodogsplash_start; return; fi
  if [ -n "${NDS_PREFIX:-}" ]; then opennds10_start; return; fi
  local pid offset
  offset=$(stat -c %s "$LABDIR/opennds.log" 2>/dev/null || echo 0)
  pid=$(supervise nsenter -t "$(cat "$LABDIR/anchor.pid")" -m -n -- \
    env PATH="/run/sluice-lab/iptables-wrapper:/run/sluice-lab/lab-bin:/usr/sbin:/usr/bin:/sbin:/bin" opennds -f -d 3)
  local deadline=$((SECONDS + 30))
  # ndsctl answers before the firewall is complete; "now running" comes after it.
  until tail -c +"$((offset + 1))" "$LABDIR/opennds.log" 2>/dev/null | grep -q 'openNDS is now running'; do
    pid_alive "$pid" || die "openNDS exited during start (see $LABDIR/opennds.log)"
    [ "$SECONDS" -lt "$deadline" ] || die "openNDS did not come up in 30 s (see $LABDIR/opennds.log)"
    sleep 0.2
  done
  log "openNDS running (pid $pid)"
}

# openNDS 10.x logs only to syslog (none here): up once its control thread answers and its firewall is made.
opennds10_start() {
  local pid
  # A heartbeat younger than checkinterval makes a new openNDS refuse to start ("already running"): the supervisor
  # removes it before every start.
  pid=$(supervise nsenter -t "$(cat "$LABDIR/anchor.pid")" -m -n -- \
    env PATH="/usr/sbin:/usr/bin:/sbin:/bin" opennds -f)
  local deadline=$((SECONDS + 90))
  until rt timeout 10 ndsctl json >/dev/null 2>&1 && rt nft list table ip nds_filter >/dev/null 2>&1; do
    pid_alive "$pid" || die "openNDS 10 exited during start (see $LABDIR/opennds.log)"
    [ "$SECONDS" -lt "$deadline" ] || die "openNDS 10 did not come up in 90 s (see $LABDIR/opennds.log)"
    sleep 0.5
  done
  log "openNDS 10 running (pid $pid)"
}

opennds_stop() {
  load "$1"
  portal_stop
}

# The portal runs under a supervisor that starts it again 5 s after it exits, as procd does on a router (openNDS's init
# script sets `respawn`): openNDS 9.10 exits on a failed gateway check and 10.3.1 and 9.10 die of a division by zero in
# their client check when an auth lands in the second after the check began (docs/captive-portal.md "Portal
# restarts"). An exit that was not asked for (opennds.stopped absent) is logged in opennds.log and counted in
# respawns. Prints the first portal's pid once it is running.
supervise() {
  rm -f "$LABDIR/opennds.stopped" "$LABDIR/opennds.pid"
  setsid "$0" supervise-run "$LABDIR" "$@" </dev/null >>"$LABDIR/opennds.log" 2>&1 &
  echo $! >"$LABDIR/supervisor.pid"
  local deadline=$((SECONDS + 10))
  until [ -s "$LABDIR/opennds.pid" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "the portal's supervisor did not start it"
    sleep 0.05
  done
  cat "$LABDIR/opennds.pid"
}

supervise_run() {
  local rc
  while :; do
    [ -z "${NDS_PREFIX:-}" ] || rt rm -f /tmp/ndscids/heartbeat
    "$@" &
    echo $! >"$LABDIR/opennds.pid"
    rc=0; wait $! || rc=$?
    [ -e "$LABDIR/opennds.stopped" ] || [ ! -d "$LABDIR" ] && exit 0
    echo "[lab] the portal exited (status $rc) without being asked: started again in 5 s, as procd does"
    echo $(($(cat "$LABDIR/respawns" 2>/dev/null || echo 0) + 1)) >"$LABDIR/respawns"
    date +%s%3N >>"$LABDIR/respawn-times"
    sleep 5
    [ -e "$LABDIR/opennds.stopped" ] || [ ! -d "$LABDIR" ] && exit 0
  done
}

portal_stop() {
  [ -d "$LABDIR" ] && touch "$LABDIR/opennds.stopped"
  stop_pid "$LABDIR/opennds.pid"
  stop_pid "$LABDIR/supervisor.pid"
}

up() {
  local rate=8mbit owner=$PPID nds_bin=
  NDS_PREFIX=
  THEME_LISTEN= VENUE= UBUS_BUNDLE=
  # openNDS's own default, as routers run it. Not 1 s: openNDS 9.10 exits ("Unable to get routing configuration")
  # when its main loop's gateway check, once per checkinterval, runs a command while its ndsctl thread runs another
  # (each `ndsctl json` runs get_client_interface.sh per client): _execute_ret swaps the process-wide SIGCHLD handler,
  # and the handler reaps the other thread's child (docs/captive-portal.md "Portal restarts"); at 1 s that killed
  # openNDS in 2 of ~16 lab files. sluice's precision does not depend on it: openNDS reads its counters on every json.
  CHECKINTERVAL=15
  PORTAL=opennds
  IPV6=0
  BRIDGE=br-lan
  SECOND_DEVICE=
  DHCP_OPTIONS=()
  BINAUTH=${SLUICE_LAB_BINAUTH:-0}
  while [ $# -gt 0 ]; do
    case "$1" in
      --no-shape) rate= ;;
      --rate) rate=$2; shift ;;
      --checkinterval) CHECKINTERVAL=$2; shift ;;
      --owner) owner=$2; shift ;;
      --nodogsplash) nds_bin=$2; PORTAL=nodogsplash; shift ;;
      --sluice) PORTAL=sluice ;;
      --theme) THEME_LISTEN=$2; shift ;;
      --venue) VENUE=$2; shift ;;
      --ubus) UBUS_BUNDLE=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift
        [ -f "$UBUS_BUNDLE" ] || die "--ubus: no $2" ;;
      --opennds-prefix) NDS_PREFIX=$(cd "$2" && pwd); shift
        [ -x "$NDS_PREFIX/usr/bin/opennds" ] && [ -d "$NDS_PREFIX/usr/lib/opennds" ] ||
          die "--opennds-prefix: no usr/bin/opennds and usr/lib/opennds under $NDS_PREFIX" ;;
      --clients) NCLIENTS=$2; shift ;;
      --ipv6) IPV6=1 ;;
      --binauth) BINAUTH=1 ;;
      --dhcp-option) DHCP_OPTIONS+=("--dhcp-option=lan,$2"); shift ;;
      --second-device) case "$2" in [a-z]*[0-9]) SECOND_DEVICE=$2 ;; *) die "--second-device $2: a name like phy1-ap0" ;; esac
        shift ;;
      --bridge) case "$2" in br-[a-z]*) BRIDGE=$2 ;; *) die "--bridge $2: a bridge name br-<name>" ;; esac; shift ;;
      --allow-port) case "$2" in ''|*[!0-9]*) die "--allow-port $2: not a port" ;; esac
        USERS_TO_ROUTER="${USERS_TO_ROUTER%\}}    FirewallRule allow tcp port $2
}" ; shift ;;
      *) die "unknown option $1" ;;
    esac
    shift
  done
  case "$NCLIENTS" in ''|*[!0-9]*) die "--clients $NCLIENTS: not a number" ;; esac
  [ "$NCLIENTS" -ge 1 ] && [ "$NCLIENTS" -le 99 ] || die "--clients $NCLIENTS: 1 to 99 (the DHCP range)"
  local id ns i
  id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
  LABDIR=/tmp/sluice-e2e-$id
  # The lab dir appears with its owner already in it (a rename): another lab's cleanup-stale, running while this one
  # comes up (the runner brings up two at a time), would otherwise take a dir without owner.pid for a dead lab's.
  local fresh=/tmp/.sluice-e2e-new-$id
  mkdir -m 700 "$fresh"
  echo "$owner" >"$fresh/owner.pid"
  mv "$fresh" "$LABDIR"
  UP=${PREFIX}$id-up RT=${PREFIX}$id-rt
  CLIENTS=""
  for i in $(seq "$NCLIENTS"); do CLIENTS="$CLIENTS ${PREFIX}$id-c$i"; done
  CLIENTS=${CLIENTS# }
  cat >"$LABDIR/lab.env" <<EOF
ID=$id
UP=$UP
RT=$RT
CLIENTS="$CLIENTS"
CHECKINTERVAL=$CHECKINTERVAL
RATE=$rate
PORTAL=$PORTAL
BRIDGE=$BRIDGE
SECOND_DEVICE=$SECOND_DEVICE
NDS_PREFIX=$NDS_PREFIX
UBUS_SOCKET=${UBUS_BUNDLE:+$LABDIR/bus/ubus.sock}
UPSTREAM_IP=$WAN_NET.2
ROUTER_LAN_IP=$LAN_NET.1
EOF
  # Anything failing from here on leaves a half lab: take it down again.
  trap 'rc=$?; if [ "$rc" != 0 ]; then log "bring-up failed; tearing down"; down "$LABDIR" || true; fi' EXIT

  for ns in "$UP" "$RT" $CLIENTS; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    if [ "$IPV6" = 1 ]; then
      ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    else
      ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    fi
  done

  # WAN: router "wan" <-> upstream "eth0".
  ip -n "$RT" link add wan type veth peer name eth0 netns "$UP"
  ip -n "$RT" addr add "$WAN_NET.1/24" dev wan
  ip -n "$UP" addr add "$WAN_NET.2/24" dev eth0
  # A second upstream address (the same server answers on both): another host, for the walled garden's tests. The
  # garden never opens a private address, so its hosts also answer on two public-looking ones (TEST-NET-2, routed to
  # the upstream by the router's default route).
  ip -n "$UP" addr add "$WAN_NET.3/24" dev eth0
  ip -n "$UP" addr add 198.51.100.2/32 dev eth0
  ip -n "$UP" addr add 198.51.100.3/32 dev eth0
  ip -n "$RT" link set wan up
  ip -n "$UP" link set eth0 up
  ip -n "$UP" route add "$LAN_NET.0/24" via "$WAN_NET.1"
  # openNDS reports itself offline without a default route.
  ip -n "$RT" route add default via "$WAN_NET.2"
  ip netns exec "$RT" sysctl -qw net.ipv4.ip_forward=1
  if [ "$IPV6" = 1 ]; then
    ip -n "$RT" addr add fd77:1::1/64 dev wan nodad
    ip -n "$UP" addr add fd77:1::2/64 dev eth0 nodad
    ip -n "$UP" route add fd77::/64 via fd77:1::1
    ip netns exec "$RT" sysctl -qw net.ipv6.conf.all.forwarding=1
  fi
  # openNDS calls itself offline until the upstream gateway has a neighbour entry.
  ip netns exec "$RT" busybox ping -c 1 -W 2 "$WAN_NET.2" >/dev/null
  # The shaper sits on the upstream's side of the uplink, i.e. BEFORE the gate: packets queued in it still have
  # to pass openNDS's firewall, so closing the gate stops them (a shaper after the gate would leak its queue).
  if [ -n "$rate" ]; then
    ip netns exec "$UP" tc qdisc add dev eth0 root tbf rate "$rate" burst 32kbit latency 400ms
  fi

  # LAN: $BRIDGE (br-lan) with one veth per client; fixed client MACs 02:00:00:00:0c:0N. Each client counts the IP
  # bytes it exchanged with the upstream (nft counters from_upstream/to_upstream): what really passed the gate, at the
  # level openNDS counts.
  ip -n "$RT" link add "$BRIDGE" type bridge forward_delay 0 stp_state 0
  router_without_br_netfilter "$RT"
  ip -n "$RT" addr add "$LAN_NET.1/24" dev "$BRIDGE"
  [ "$IPV6" = 1 ] && ip -n "$RT" addr add fd77::1/64 dev "$BRIDGE" nodad
  ip -n "$RT" link set "$BRIDGE" up
  if [ "$BRIDGE" != br-lan ]; then
    ip -n "$RT" link add br-lan type bridge forward_delay 0 stp_state 0
    ip -n "$RT" addr add 10.77.9.1/24 dev br-lan
    ip -n "$RT" link set br-lan up
  fi
  i=0
  for ns in $CLIENTS; do
    i=$((i + 1))
    if [ -n "$SECOND_DEVICE" ] && [ "$i" = "$NCLIENTS" ]; then
      # The second hotspot device: the router's LAN address on it too, the client behind it by a host route.
      ip -n "$RT" link add "$SECOND_DEVICE" type veth peer name eth0 netns "$ns"
      ip -n "$ns" link set eth0 address "$(client_mac "$i")"
      ip -n "$RT" addr add "$LAN_NET.1/32" dev "$SECOND_DEVICE"
      ip -n "$RT" link set "$SECOND_DEVICE" up
      ip -n "$ns" link set eth0 up
      ip -n "$RT" route add "$LAN_NET.$((100 + i))/32" dev "$SECOND_DEVICE"
      ip -n "$ns" addr add "$LAN_NET.$((100 + i))/24" dev eth0
      ip -n "$ns" route add default via "$LAN_NET.1"
    else
      ip -n "$RT" link add "lan$i" type veth peer name eth0 netns "$ns"
      ip -n "$ns" link set eth0 address "$(client_mac "$i")"
      ip -n "$RT" link set "lan$i" master "$BRIDGE" up
      ip -n "$ns" link set eth0 up
    fi
    if [ "$IPV6" = 1 ]; then
      ip -n "$ns" addr add "fd77::$((100 + i))/64" dev eth0 nodad
      ip -n "$ns" route add default via fd77::1
    fi
    # With sluice as the gate, clients resolve through the router's dnsmasq (the probes' real names: lab.sh below).
    if [ "$PORTAL" = sluice ]; then
      mkdir -p "/etc/netns/$ns" && echo "nameserver $LAN_NET.1" >"/etc/netns/$ns/resolv.conf"
    fi
    ip netns exec "$ns" nft -f - <<EOF
table ip lab {
  counter from_upstream {}
  counter to_upstream {}
  chain in {
    type filter hook input priority 0; policy accept;
    ip saddr $WAN_NET.2 counter name from_upstream
  }
  chain out {
    type filter hook output priority 0; policy accept;
    ip daddr $WAN_NET.2 counter name to_upstream
  }
}
EOF
  done
  # The upstream counts the IP bytes each client's packets brought it: the upload that passed the gate.
  {
    echo 'table ip lab {'
    for i in $(seq "$NCLIENTS"); do echo "  counter from_c$i {}"; done
    echo '  chain in {'
    echo '    type filter hook input priority 0; policy accept;'
    for i in $(seq "$NCLIENTS"); do echo "    ip saddr $LAN_NET.$((100 + i)) counter name from_c$i"; done
    echo '  }'
    echo '}'
  } | ip netns exec "$UP" nft -f -

  # Private /etc pieces for the router (ip netns exec binds /etc/netns/<ns>/* over /etc/*).
  mkdir -p "/etc/netns/$RT"
  cp -a /etc/opennds "/etc/netns/$RT/opennds"
  write_opennds_conf "/etc/netns/$RT/opennds"
  cp /etc/hosts "/etc/netns/$RT/hosts"
  # nodogsplash: its binary, ndsctl, config and splash page go into the router's private /run/sluice-lab (below).
  local extra="$LABDIR/run-extra"
  mkdir -p "$extra"
  if [ "$PORTAL" = nodogsplash ]; then
    if [ ! -x "$nds_bin" ] || [ ! -x "$(dirname "$nds_bin")/ndsctl" ]; then
      die "--nodogsplash $nds_bin: need the binary and ndsctl next to it"
    fi
    mkdir -p "$extra/bin"
    cp "$nds_bin" "$extra/bin/nodogsplash"
    cp "$(dirname "$nds_bin")/ndsctl" "$extra/bin/ndsctl"
    write_nodogsplash_conf "$extra/nodogsplash.conf" "$extra/htdocs"
  fi
  if [ -n "$NDS_PREFIX" ]; then
    [ "$PORTAL" = opennds ] || die "--opennds-prefix is for openNDS"
    write_opennds_uci "$extra/opennds-uci"
    write_opennds10_mounts "$extra/opennds10-mounts.sh"
  fi
  [ -z "$NDS_PREFIX" ] && [ "$BINAUTH" != 1 ] ||
    cp "$HERE/../../files/usr/lib/opennds/binauth_sluice.sh" "$extra/binauth_sluice.sh"
  [ -z "$VENUE" ] || [ -n "$THEME_LISTEN" ] || die "--venue is for --theme (the ThemeSpec reads it)"
  if [ -n "$THEME_LISTEN" ]; then
    [ "$PORTAL" = opennds ] || die "--theme is for openNDS"
    cp "$HERE/../../files/usr/lib/opennds/theme_sluice.sh" "$extra/theme_sluice.sh"
    # The theme reads sluice.http.listen (and sluice.main.venue) with uci; the lab has no uci, so a stand-in answers
    # those questions the way uci does (the value on stdout, exit 0; anything else: exit 1 and nothing, as `uci -q get`
    # of a missing option).
    mkdir -p "$extra/lab-bin"
    {
      echo '#!/bin/sh'
      printf '[ "$*" = "-q get sluice.http.listen" ] && { echo %q; exit 0; }\n' "$THEME_LISTEN"
      [ -z "$VENUE" ] || printf '[ "$*" = "-q get sluice.main.venue" ] && { echo %q; exit 0; }\n' "$VENUE"
      echo 'exit 1'
    } >"$extra/lab-bin/uci"
    chmod +x "$extra/lab-bin/uci"
  fi
  local bundle_dir=''
  if [ -n "$UBUS_BUNDLE" ]; then
    [ "$PORTAL" = opennds ] && [ -z "$NDS_PREFIX" ] || die "--ubus is for Debian's openNDS (its PATH has the lab's bin)"
    # The bus directory is bound into the router before its private /tmp hides the lab's directory: the socket the
    # test's ubusd makes in it later is the one openNDS's scripts reach. The bundle's directory likewise (a checkout
    # under /tmp is hidden there too). node itself is the host's.
    mkdir -p "$LABDIR/bus" "$extra/lab-bin"
    bundle_dir=$(dirname "$UBUS_BUNDLE")
    {
      echo '#!/bin/sh'
      echo "# sluice's ubus CLI on the lab's bus (lab.sh --ubus)"
      printf 'exec %q %q ubus -s %q "$@"\n' "$(command -v node)" \
        "/run/sluice-lab/bundle/$(basename "$UBUS_BUNDLE")" /run/sluice-lab/bus/ubus.sock
    } >"$extra/lab-bin/ubus"
    chmod +x "$extra/lab-bin/ubus"
  fi

  # The router's anchor: holds the mount namespace with the private /tmp. The checkout may itself live under /tmp
  # (a CI clone), which that tmpfs hides: the iptables wrapper openNDS needs is copied first into a private tmpfs on
  # /run/sluice-lab (the empty directory is the only trace in the host's /run).
  mkdir -p /run/sluice-lab
  setsid ip netns exec "$RT" unshare -m --propagation private \
    env WRAPPERS="$HERE/iptables-wrapper" EXTRA="$extra" NDS_PREFIX="$NDS_PREFIX" RT="$RT" \
    BUS="${bundle_dir:+$LABDIR/bus}" BUNDLE_DIR="$bundle_dir" \
    sh -c 'mount -t tmpfs -o size=4m sluice-lab-bin /run/sluice-lab &&
      cp -r "$WRAPPERS" /run/sluice-lab/iptables-wrapper && cp -r "$EXTRA"/. /run/sluice-lab/ &&
      { [ -z "$NDS_PREFIX" ] || sh /run/sluice-lab/opennds10-mounts.sh "$NDS_PREFIX" "$RT"; } &&
      { [ -z "$BUS" ] || { mkdir /run/sluice-lab/bus /run/sluice-lab/bundle &&
        mount --bind "$BUS" /run/sluice-lab/bus && mount --bind -o ro "$BUNDLE_DIR" /run/sluice-lab/bundle; }; } &&
      mount -t tmpfs -o size=32m,mode=1777 sluice-lab /tmp && touch /tmp/.lab-ready && exec sleep infinity' \
    </dev/null >/dev/null 2>>"$LABDIR/lab.log" &
  echo $! >"$LABDIR/anchor.pid"
  wait_for 10 "router mount namespace" rt test -e /tmp/.lab-ready

  # DHCP: openNDS only admits clients whose address is in a leases file. Each client's address is pinned in a hosts
  # file dnsmasq reads again on SIGHUP, so that `lab.sh lease` can hand a client a new address, a real new lease.
  for i in $(seq "$NCLIENTS"); do echo "$(client_mac "$i"),$LAN_NET.$((100 + i))"; done | rt sh -c 'cat >/tmp/dhcp.hosts'
  setsid nsenter -t "$(cat "$LABDIR/anchor.pid")" -m -n -- \
    dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
    --interface="$BRIDGE" --except-interface=lo --dhcp-authoritative \
    --dhcp-range="set:lan,$LAN_NET.100,$LAN_NET.199,255.255.255.0,12h" --dhcp-hostsfile=/tmp/dhcp.hosts \
    --dhcp-leasefile=/tmp/dhcp.leases --address=/upstream.lab/"$WAN_NET.2" \
    --address=/other.lab/"$WAN_NET.3" --address=/garden.lab/198.51.100.2 --address=/garden-other.lab/198.51.100.3 \
    --address=/router.lab/"$LAN_NET.1" --address=/connectivitycheck.gstatic.com/"$WAN_NET.2" \
    --address=/captive.apple.com/"$WAN_NET.2" --address=/www.msftconnecttest.com/"$WAN_NET.2" \
    --address=/detectportal.firefox.com/"$WAN_NET.2" --pid-file=/tmp/dnsmasq.pid ${DHCP_OPTIONS[@]+"${DHCP_OPTIONS[@]}"} \
    --log-facility=- </dev/null >>"$LABDIR/dnsmasq.log" 2>&1 &
  echo $! >"$LABDIR/dnsmasq.pid"

  # The upstream HTTP server (bounded generated files; counts bytes sent and acknowledged per client IP).
  setsid ip netns exec "$UP" node "$HERE/upstream-server.mjs" --port 80 \
    </dev/null >>"$LABDIR/upstream.log" 2>&1 &
  echo $! >"$LABDIR/upstream.pid"
  wait_for 10 "the upstream HTTP server" ip netns exec "$UP" curl -sf --max-time 1 "http://127.0.0.1/ping"

  # Clients lease their addresses before openNDS starts so it finds them in the leases file.
  i=0
  for ns in $CLIENTS; do
    i=$((i + 1))
    [ -n "$SECOND_DEVICE" ] && [ "$i" = "$NCLIENTS" ] && continue
    ip netns exec "$ns" busybox udhcpc -i eth0 -s "$HERE/udhcpc-hook.sh" -q -n -t 10 -T 1 >>"$LABDIR/udhcpc.log" 2>&1 ||
      die "DHCP failed in $ns"
  done

  opennds_start "$LABDIR"

  # sluice's `list ndsctl` is argv; one generated script keeps it to one element.
  printf '#!/bin/sh\nexec %q %q "$@"\n' "$HERE/ndsctl-wrapper" "$LABDIR" >"$LABDIR/ndsctl"
  chmod +x "$LABDIR/ndsctl"
  trap - EXIT
  log "lab $id up in $LABDIR"
  echo "$LABDIR"
}

# lease <labdir> <client i> <address>: pins client i to a new address (dnsmasq reads its hosts file again on SIGHUP)
# and has the client ask for a lease, as a device does when its lease changes: it leaves the old address for the new
# one, under the same MAC.
lease() {
  load "$1"
  local i=$2 addr=$3 mac ns
  mac=$(client_mac "$i")
  ns=$(echo "$CLIENTS" | tr ' ' '\n' | sed -n "${i}p")
  [ -n "$ns" ] || die "no client $i"
  rt sh -c "sed -i '/^$mac,/d' /tmp/dhcp.hosts && echo '$mac,$addr' >>/tmp/dhcp.hosts"
  rt sh -c 'kill -HUP "$(cat /tmp/dnsmasq.pid)"'
  # dnsmasq answers the old lease's owner with the new pin once it has read the file again: ask until it does.
  local deadline=$((SECONDS + 30))
  until ip netns exec "$ns" busybox udhcpc -i eth0 -s "$HERE/udhcpc-hook.sh" -q -n -t 5 -T 1 >>"$LABDIR/udhcpc.log" 2>&1 &&
    ip netns exec "$ns" ip -4 addr show dev eth0 | grep -qw "$addr"; do
    [ "$SECONDS" -lt "$deadline" ] || die "client $i did not lease $addr"
    sleep 0.5
  done
}

down() {
  LABDIR=$1
  local ns pid
  [ -f "$LABDIR/lab.env" ] && . "$LABDIR/lab.env"
  # openNDS first, gracefully, so it removes its firewall while the namespace still exists.
  portal_stop
  for f in dnsmasq upstream anchor; do stop_pid "$LABDIR/$f.pid"; done
  for ns in ${UP:-} ${RT:-} ${CLIENTS:-}; do
    # Whatever else still runs in a lab namespace was started by this lab (curl loops, udhcpc, sluice children).
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  [ -n "${RT:-}" ] && rm -rf "/etc/netns/${RT:?}"
  for ns in ${CLIENTS:-}; do rm -rf "/etc/netns/${ns:?}"; done
  rm -rf "$LABDIR"
  log "lab ${ID:-?} down"
}

cleanup_stale() {
  local dir owner ns id
  for dir in /tmp/sluice-e2e-*; do
    [ -d "$dir" ] || continue
    owner=$(cat "$dir/owner.pid" 2>/dev/null || true)
    if pid_alive "$owner"; then continue; fi
    log "removing stale lab $dir"
    down "$dir"
  done
  # Namespaces whose lab dir is already gone.
  for ns in $(ip netns list | awk '{print $1}' | grep "^${PREFIX}[0-9a-f]\{6\}-" || true); do
    id=${ns#"$PREFIX"}; id=${id%%-*}
    [ -d "/tmp/sluice-e2e-$id" ] && continue
    log "removing stale namespace $ns"
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/${ns:?}"
  done
}

cmd=${1:-}
shift || true
case "$cmd" in
  up) up "$@" ;;
  down) down "${1:?lab dir}" ;;
  cleanup-stale) cleanup_stale ;;
  opennds-start) opennds_start "${1:?lab dir}" ;;
  opennds-stop) opennds_stop "${1:?lab dir}" ;;
  supervise-run) load "${1:?lab dir}"; shift; supervise_run "$@" ;;
  rt) load "${1:?lab dir}"; shift; rt "$@" ;;
  lease) lease "${1:?lab dir}" "${2:?client}" "${3:?address}" ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
