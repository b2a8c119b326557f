#!/bin/sh
# openNDS's BinAuth when sluice sells the access (openNDS 10 runs one on every auth and deauth; its default,
# binauth_log.sh, costs it ~0.3 s of CPU each time on a router, most of what a customer coming or going costs):
#   uci set opennds.@opennds[0].binauth='/usr/lib/opennds/binauth_sluice.sh'
# sluice opens and closes the gates itself (ndsctl auth and deauth) and re-opens paying clients' gates after an openNDS
# restart, so there is nothing to log or restore here: every call but one is answered "done" at once. The one is
# `auth_client`, a client asking openNDS's own login page to let it in: refused, since only a payment opens the gate
# (openNDS sends the client back to the splash page, which leads to the pay page).
# Arguments (openNDS src/auth.c binauth_action, src/http_microhttpd.c do_binauth): <action> <mac> ..., and for an
# auth or a deauth: <action> <mac> <bytes in> <bytes out> <session start> <session end> <token> <custom data>.
#
# One thing is kept: the client's token at its auth, in sluice-tokens/<mac> beside openNDS's control socket (a tmpfs),
# so that sluice can close the gate with `ndsctl deauth <token>`, which openNDS finds by comparing strings, where a MAC
# costs it a hash of every listed client first (10.3.1: three processes per client). Shell builtins only, no process
# but the one mkdir a boot; a deauth empties the file (openNDS gives the client a new token then), which also tells
# sluice's watch of the directory that openNDS closed a gate by itself (an idle or session timeout, an admin's deauth).
[ "$1" = auth_client ] && exit 1
# shutdown_deauth: openNDS is stopping. sluice sees its restart by itself (a new control socket) and opens the paying
# clients' gates again then; an emptied record would tell it of every gate closing while the portal cannot open one.
# The record's token answers no after the restart, and sluice asks again by MAC.
case $1 in
	shutdown_deauth) exit 0 ;;
	*_auth | *_deauth) ;;
	*) exit 0 ;;
esac
case $2 in
	'' | *[!0-9a-fA-F:]*) exit 0 ;;
esac
# openNDS keeps its socket on the first tmpfs of these (SLUICE_BINAUTH_DIRS: a test's own).
for dir in ${SLUICE_BINAUTH_DIRS:-/tmp /run /var}; do
	[ -S "$dir/ndsctl.sock" ] || continue
	umask 022
	[ -d "$dir/sluice-tokens" ] || mkdir -m 755 "$dir/sluice-tokens" 2>/dev/null || exit 0
	case $1 in
		*_deauth) [ -e "$dir/sluice-tokens/$2" ] && printf '' 2>/dev/null >"$dir/sluice-tokens/$2" ;;
		*) printf '%s %s\n' "$2" "$7" 2>/dev/null >"$dir/sluice-tokens/$2" ;;
	esac
	break
done
exit 0
