#!/bin/bash
# main.enabled × every path an admin takes, and the log tag, in the procd lab: an OpenWrt 24.10 tree whose PID 1 is
# the real procd (with ubusd, logd, uci, opkg), built by shared/labs/procd/build.sh from public sources and booted in
# private namespaces by its ns.sh. Nothing of the lab is in this repository; test/package/procd-lab.test.ts runs this
# when the tree exists and reports a counted SKIP otherwise.
# Usage: matrix.sh NS_SH IPK   (as root). Prints one line per cell: `CELL <path> <state> ok|FAIL <what was seen>`,
# and `LOG …` lines (logread excerpts) for the report.
# shellcheck disable=SC2016 # the single-quoted scripts run inside the tree, where they expand
set -u
NS_SH=$1 IPK=$2
# shellcheck source=/dev/null
. "$NS_SH"
work=$(mktemp -d /tmp/sluice-procd-lab.XXXXXX)
cleanup() { ns_down 30 >/dev/null 2>&1; rm -rf "$work"; }
trap cleanup EXIT

# In the tree (persistent across reboots): what the cells look at.
# - procs: daemon processes (busybox ps; /usr/bin/sluice execs `node --no-sparkplug …/sluice.mjs daemon`)
# - state: `procs=N instance=true|no service=yes|no trigger=yes|no ubus=yes|no`: procd's own `service list` (the
#   instance, the service, its config.change trigger) and whether the daemon is up (its ubus object)
# - wait_for STATE: poll until state starts with STATE (60 tries, 0.5 s apart); prints the last state either way
lib='
procs() { ps w | grep -cE "[/]usr/(bin/sluice|share/sluice/sluice.mjs) daemon"; }
svc() { ubus call service list "{\"name\":\"sluice\",\"verbose\":true}" 2>/dev/null; }
state() {
	local s inst trig
	s=$(svc)
	inst=$(printf "%s" "$s" | jsonfilter -e "@.sluice.instances.instance1.running" 2>/dev/null)
	trig=$(printf "%s" "$s" | jsonfilter -e "@.sluice.triggers[0][0]" 2>/dev/null)
	[ -n "$trig" ] && trig=yes
	printf "procs=%s instance=%s service=%s trigger=%s ubus=%s\n" "$(procs)" "${inst:-no}" \
		"$(printf "%s" "$s" | jsonfilter -e "@.sluice" >/dev/null 2>&1 && echo yes || echo no)" "${trig:-no}" \
		"$(ubus -t 1 list sluice >/dev/null 2>&1 && echo yes || echo no)"
}
wait_for() {
	local i s
	for i in $(seq 1 60); do
		s=$(state)
		case "$s" in "$1"*) echo "$s"; return 0;; esac
		sleep 0.5
	done
	echo "$s"; return 1
}
# lines of the secret options in uci show
SECRET_RE="[.](secret|das_secret|password|command_secret|pcsync_secret)="
set_enabled() { uci set sluice.main.enabled="$1" && uci commit sluice; }
# LuCI Save & Apply: rpcd commits and announces config.change for the package itself (rpcd uci.c rpc_uci_trigger_event)
save_apply() { set_enabled "$1" && ubus call service event "{\"type\":\"config.change\",\"data\":{\"package\":\"sluice\"}}"; }
'
ON='procs=1 instance=true service=yes trigger=yes ubus=yes'
OFF='procs=0 instance=no service=yes trigger=yes ubus=no'
GONE='procs=0 instance=no service=no trigger=no ubus=no'

install_lib() { printf '%s\n' "$lib" > "/proc/$NS_PID/root/root/lab.sh"; }
in_tree() { ns_sh ". /root/lab.sh; $1"; }

# cell PATH STATE EXPECTED SCRIPT: runs SCRIPT in the tree, waits for EXPECTED, prints the cell
cell() {
	local seen
	seen=$(in_tree "if ( $4 ) >/dev/null 2>&1; then wait_for '$3'; else echo \"command failed, \$(state)\"; fi" | tail -n 1)
	if [ "${seen#"$3"}" != "$seen" ]; then echo "CELL $1 $2 ok $seen $(date +%T)"; else echo "CELL $1 $2 FAIL $seen (wanted $3)"; fi
}
# reload_config keeps a baseline of every config (/var/run/config.md5) and announces only what differs from it: after a
# cell that applied the file another way, take the new baseline, as the next Save & Apply would
resync() { in_tree 'reload_config' >/dev/null 2>&1; }

boot() { ns_boot "$work/root" "$work" && install_lib; }

ns_copy_root "$work/root" || exit 1
boot || { echo "BOOT FAIL"; exit 1; }
cp "$IPK" "/proc/$NS_PID/root/tmp/sluice.ipk"
# the same package one release later, for the upgrade cells
(
	set -e; mkdir "$work/up" "$work/up/c"; cd "$work/up"
	tar -xzf "$IPK"; tar -xzf control.tar.gz -C c
	sed -i 's/^Version: \(.*\)-r\([0-9]*\)$/Version: \1-r9\2/' c/control
	tar --numeric-owner --owner=0 --group=0 -czf control.tar.gz -C c ./control ./conffiles ./postinst ./prerm
	tar --numeric-owner --owner=0 --group=0 -czf "$work/up.ipk" ./debian-binary ./data.tar.gz ./control.tar.gz
)

# install: postinst enables and starts; boot's baseline of reload_config (a package installed later is not in it)
cell install on "$ON" 'opkg install /tmp/sluice.ipk && reload_config'

# --- logs: procd tags instance output with the command's basename
in_tree 'for i in $(seq 1 60); do logread | grep -q "sluice running" && break; sleep 0.5; done'
in_tree 'logread' | grep -E ' (sluice|node)\[' | tail -3 | sed 's/^/LOG /'
echo "TAGS sluice=$(in_tree 'logread' | grep -c ' sluice\[') node=$(in_tree 'logread' | grep -c ' node\[') logread_e=$(in_tree 'logread -e sluice' | wc -l)"

# --- LuCI Save & Apply (uci commit + config.change from rpcd)
cell save-apply off "$OFF" 'save_apply 0'
cell save-apply on "$ON" 'save_apply 1'
resync
# --- uci set/commit + reload_config
cell reload_config off "$OFF" 'set_enabled 0 && reload_config'
cell reload_config on "$ON" 'set_enabled 1 && reload_config'
# --- /etc/init.d/sluice reload
cell init-reload off "$OFF" 'set_enabled 0 && /etc/init.d/sluice reload'
cell init-reload on "$ON" 'set_enabled 1 && /etc/init.d/sluice reload'
# --- restart
cell init-restart off "$OFF" 'set_enabled 0 && /etc/init.d/sluice restart'
cell init-restart on "$ON" 'set_enabled 1 && /etc/init.d/sluice restart'
# --- start
cell init-start off "$OFF" 'set_enabled 0 && /etc/init.d/sluice start'
cell init-start on "$ON" 'set_enabled 1 && /etc/init.d/sluice start'
# --- stop: procd deletes the service with its trigger in either state (every procd service); start brings it back
cell init-stop on "$GONE" '/etc/init.d/sluice stop'
cell init-stop-then-start on "$ON" '/etc/init.d/sluice start'
cell init-stop off "$GONE" 'set_enabled 0 && /etc/init.d/sluice stop'
cell init-stop-then-start off "$OFF" '/etc/init.d/sluice start'
cell init-start on "$ON" 'set_enabled 1 && /etc/init.d/sluice start'
resync
# --- the daemon's own reload paths with enabled 0 (no init script in between): it hands the switch to the init
# script, no exit into procd's respawn loop; on comes back by Save & Apply
cell ubus-reload off "$OFF" 'set_enabled 0 && ubus call sluice reload'
cell ubus-reload-then-save-apply on "$ON" 'save_apply 1'
cell sighup off "$OFF" 'set_enabled 0 && kill -HUP $(ps w | grep "[s]luice.mjs daemon" | awk "{print \$1}")'
cell sighup-then-save-apply on "$ON" 'save_apply 1'
# a crash while the file already says 0 (not applied yet): procd respawns it, the new daemon hands off
cell respawn off "$OFF" 'set_enabled 0 && kill -9 $(ps w | grep "[s]luice.mjs daemon" | awk "{print \$1}") &&
	for i in $(seq 1 60); do logread | grep -q "not starting" && break; sleep 0.5; done'
in_tree 'logread' | grep -E 'main.enabled is 0|crash loop' | sed 's/^/LOG /'
echo "RESPAWNS not_starting=$(in_tree 'logread' | grep -c 'main.enabled is 0: not starting') crash_loop=$(in_tree 'logread' | grep -c 'crash loop')"
cell respawn-then-save-apply on "$ON" 'save_apply 1'
resync
# --- enable / disable: only the boot-time rc.d link; the running state does not change
cell disable on "$ON" '/etc/init.d/sluice disable && ! /etc/init.d/sluice enabled'
cell enable on "$ON" '/etc/init.d/sluice enable && /etc/init.d/sluice enabled'

# --- reboot (procd's shutdown runs K* scripts, then boot runs S*)
reboot_cell() { # STATE EXPECTED
	ns_down 60 >/dev/null 2>&1; boot || { echo "CELL reboot $1 FAIL boot"; return; }
	cell reboot "$1" "$2" 'true'
}
reboot_cell on "$ON"
in_tree 'set_enabled 0' >/dev/null
reboot_cell off "$OFF"
cell reboot-then-save-apply on "$ON" 'reload_config; save_apply 1'
in_tree '/etc/init.d/sluice disable' >/dev/null
ns_down 60 >/dev/null 2>&1; boot
cell reboot-rc-disabled on "$GONE" 'true'
in_tree '/etc/init.d/sluice enable && /etc/init.d/sluice start' >/dev/null
resync

# --- opkg upgrade (the package one release later): prerm stops, postinst starts; the file's switch is kept.
# The tree is first made to look like an install of a release that kept its secrets in /etc/config/sluice (no
# sluice_secrets, every secret in sluice, one with quotes and spaces): the upgrade's uci-defaults moves them.
cp "$work/up.ipk" "/proc/$NS_PID/root/tmp/up.ipk"
in_tree '
	uci set sluice.radius.secret="it'"'"'s a \"radius\" secret"
	uci set sluice.radius.das_secret="das-secret"
	uci set sluice.mqtt.password="p@ss word"
	uci set sluice.mqtt.command_secret="command-secret-16+"
	uci set sluice.hook.secret="hook-secret-16chars"
	uci set sluice.http.pcsync_secret="pcsync-secret-16ch"
	uci commit sluice && rm /etc/config/sluice_secrets && uci show sluice | grep -E "$SECRET_RE" | sort > /root/secrets-before' >/dev/null 2>&1
cell opkg-upgrade off "$OFF" 'set_enabled 0 && /etc/init.d/sluice reload && opkg install /tmp/up.ipk'
echo "SECRETS moved=$(in_tree 'uci show sluice_secrets | grep -E "$SECRET_RE" | sed "s/^sluice_secrets/sluice/" | sort | cmp -s - /root/secrets-before && echo same || echo DIFFERENT') \
left_in_sluice=$(in_tree 'uci show sluice | grep -cE "$SECRET_RE"') \
mode=$(in_tree 'ls -l /etc/config/sluice_secrets' | cut -c1-10) \
script_left=$(in_tree '[ -e /etc/uci-defaults/90-sluice-secrets ] && echo yes || echo no') \
logged=$(in_tree 'logread' | grep -c 'moved 6 secret option')"
in_tree 'uci show sluice_secrets' | sed 's/^/SECRETFILE /'
# From here on the secrets are in sluice_secrets: a warning before it is right (they were where staff can read them;
# seen once under load, most likely from the daemon reading the old file as the upgrade stopped it), not one of a
# secret left behind.
echo "SECRETS warned_before_move=$(in_tree 'logread' | grep -c 'secret readable')"
in_tree 'logger -t sluice-lab "MARK secrets moved"'
cell opkg-upgrade-then-save-apply on "$ON" 'save_apply 1'
# the daemon runs on them: RADIUS and the hook switched on need their secrets (without, config_problems would name
# radius.secret and hook.secret and the sections would be off), and it finds none left in /etc/config/sluice
problems() { in_tree 'ubus call sluice stats | jsonfilter -e "@.config_problems[*].path"' | tr '\n' ' '; }
cell secrets-in-use on "$ON" 'uci set sluice.radius.enabled=1 && uci set sluice.radius.server=127.0.0.1 && uci set sluice.hook.enabled=1 &&
	uci commit sluice && /etc/init.d/sluice restart &&
	for i in $(seq 1 60); do logread | grep -q "sink started sink=hook" && break; sleep 0.5; done'
echo "SECRETS problems=[$(problems)] exposed_warnings=$(in_tree 'logread' | awk '/MARK secrets moved/ { m = 1 } m && /secret readable/ { n++ } END { print m ? n + 0 : "no-marker" }')"
# a secret changed the way LuCI saves it (uci commit of sluice_secrets; rpcd announces config.change for that file):
# the trigger reloads the daemon, which reads the new one (too short here: the hook is switched off and says why)
in_tree 'uci set sluice_secrets.hook.secret=short && uci commit sluice_secrets &&
	ubus call service event "{\"type\":\"config.change\",\"data\":{\"package\":\"sluice_secrets\"}}" &&
	for i in $(seq 1 60); do ubus call sluice stats | grep -q hook.secret && break; sleep 0.5; done' >/dev/null
echo "SECRETS after_change=[$(problems)]"
# the migration again, by hand, on a secret set in both files: the one in sluice_secrets (LuCI's, newer) is kept,
# the old copy removed; and once more with nothing to move (idempotent, exit 0)
tar -xzf "$work/up/data.tar.gz" -C "$work/up" ./etc/uci-defaults/90-sluice-secrets
cp "$work/up/etc/uci-defaults/90-sluice-secrets" "/proc/$NS_PID/root/tmp/migrate"
echo "SECRETS both=$(in_tree 'uci set sluice.radius.das_secret=older && uci commit sluice && sh /tmp/migrate && uci get sluice_secrets.radius.das_secret && uci -q get sluice.radius.das_secret; echo rc=$?' | tr '\n' ,) \
again=$(in_tree 'a=$(uci show sluice_secrets; uci show sluice); sh /tmp/migrate; rc=$?; [ "$a" = "$(uci show sluice_secrets; uci show sluice)" ] && echo "unchanged rc=$rc" || echo "changed rc=$rc"')"
echo "VERSION $(in_tree 'opkg status sluice' | grep Version)"
in_tree 'cp /tmp/sluice.ipk /tmp/down.ipk; opkg install --force-downgrade /tmp/down.ipk' >/dev/null 2>&1
cell opkg-upgrade on "$ON" 'opkg install /tmp/up.ipk'
echo "DONE"
