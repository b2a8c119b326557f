#!/bin/sh
# openNDS's BinAuth when sluice sells the access (openNDS 10 runs one on every auth and deauth; its default,
# binauth_log.sh, costs it ~0.3 s of CPU each time on a router, most of what a customer coming or going costs):
#   uci set opennds.@opennds[0].binauth='/usr/lib/opennds/binauth_sluice.sh'
# sluice opens and closes the gates itself (ndsctl auth and deauth) and re-opens paying clients' gates after an openNDS
# restart, so there is nothing to log or restore here: every call but one is answered "done" at once. The one is
# `auth_client`, a client asking openNDS's own login page to let it in: refused, since only a payment opens the gate
# (openNDS sends the client back to the splash page, which leads to the pay page).
# Arguments (openNDS src/auth.c binauth_action, src/http_microhttpd.c do_binauth): <action> <mac> ...
[ "$1" = auth_client ] && exit 1
exit 0
