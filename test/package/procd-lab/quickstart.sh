#!/bin/bash
# docs/quickstart.md's router-side commands, as written, in the procd lab (OpenWrt 24.10's real procd, ubusd, logd,
# uci and opkg; shared/labs/procd): the ```sh blocks of steps 2 to 8, line by line, in order. What the lab cannot
# give is left out or substituted, and each such line is printed (`QSSUB`): lines marked "(not checked here…)" (the
# feeds' node and openNDS, openNDS's init script), the luci-app package (the lab has no luci-base), the placeholder
# pay_to address and phone MAC. Step 6 runs its uci lines on openNDS's own shipped /etc/config/opennds (a stand-in
# with what that file holds: one anonymous `config opennds` section, every option commented out); no openNDS runs
# (test/e2e/ runs a real openNDS 9.10 with the ThemeSpec). Step 7 has no phone: the admin grant the doc offers.
# Prints `QS <step> rc=<n> <line>` per line and `QSCHECK <name> <value>` for what the doc says the admin sees.
# Usage: quickstart.sh NS_SH DOC IPK   (as root)
# shellcheck disable=SC2016 # the single-quoted scripts run inside the tree, where they expand
set -u
NS_SH=$1 DOC=$2 IPK=$3
# shellcheck source=/dev/null
. "$NS_SH"
work=$(mktemp -d /tmp/sluice-procd-qs.XXXXXX)
cleanup() { ns_down 30 >/dev/null 2>&1; rm -rf "$work"; }
trap cleanup EXIT
in_tree() { ns_sh "$1"; }
wait_log() { in_tree "for i in \$(seq 1 60); do logread | grep -q '$1' && break; sleep 0.5; done"; }
daemons() { in_tree 'ps w | grep -c "[s]luice.mjs daemon"'; }
# The router's LAN address on the tree's lo (the lab has no netifd), and what base-files' /etc/init.d/boot ends with
# (the lab has no boot script): /sbin/reload_config, which takes the baseline later reload_config runs compare with.
boot() { ns_boot "$work/root" "$work" && nsenter -t "$NS_PID" -n ip addr add 192.168.1.1/24 dev lo && in_tree reload_config; }

# the package under the doc's file name, and the same one release later (the doc's upgrade)
(
	set -e; mkdir -p "$work/up/c"; cd "$work/up"
	tar -xzf "$IPK"; tar -xzf control.tar.gz -C c
	sed -i 's/^Version: .*/Version: 0.1.0-r2/' c/control
	tar --numeric-owner --owner=0 --group=0 -czf control.tar.gz -C c ./control ./conffiles ./postinst ./prerm
	tar --numeric-owner --owner=0 --group=0 -czf "$work/r2.ipk" ./debian-binary ./data.tar.gz ./control.tar.gz
)
ns_copy_root "$work/root" || exit 1
boot || { echo "BOOT FAIL"; exit 1; }
cp "$IPK" "/proc/$NS_PID/root/tmp/sluice_0.1.0-r1_all.ipk"
cp "$work/r2.ipk" "/proc/$NS_PID/root/tmp/sluice_0.1.0-r2_all.ipk"
# openNDS 10.3.1's linux_openwrt/opennds/files/etc/config/opennds without its comments (the feed's opennds package
# installs it; the lab has no openNDS)
printf 'config opennds\n' > "/proc/$NS_PID/root/etc/config/opennds"
PHONE=02:00:00:00:07:01

# step number and line of every line of the ```sh blocks of "## N." sections
awk '/^## [0-9]+\./ { step = $2 + 0 } /^```sh$/ { inblock = 1; next } /^```$/ { inblock = 0; next }
	inblock && step != "" { print step "\t" $0 }' "$DOC" > "$work/lines"

run_line() { # STEP LINE
	local step=$1 line=$2 run
	run=$line
	case "$line" in
		*'(not checked here'*) echo "QSSUB $step skipped (not checked here): $line"; return;;
	esac
	case "$line" in
		*'/tmp/luci-app-sluice_'*)
			run=$(printf '%s' "$line" | sed 's# /tmp/luci-app-sluice_[^ ]*##'); echo "QSSUB $step without luci-app-sluice (no luci-base in the lab): $run";;
		*0xYourAddress*)
			run=${line//0xYourAddress/0x209693Bc6afc0C5328bA36FaF03C514EF312287C}; echo "QSSUB $step a real address for 0xYourAddress";;
		*'<MAC of the phone>'*)
			run=${line//<MAC of the phone>/$PHONE}; echo "QSSUB $step the lab's phone MAC $PHONE";;
		reboot*)
			echo "QS $step reboot (procd's shutdown, then boot)"; ns_down 60 >/dev/null 2>&1; boot; wait_log 'sluice running'
			echo "QSCHECK step8-reboot $(daemons) $(in_tree 'logread' | grep -c 'sluice running')"
			in_tree 'for i in $(seq 1 60); do ubus -t 1 list sluice >/dev/null 2>&1 && break; sleep 0.5; done'
			echo "QSCHECK step8-reboot-session $(in_tree 'ubus call sluice sessions' | grep -c "$PHONE")"
			# /tmp is gone with the reboot: the admin copies the new package again (step 1's scp)
			cp "$work/r2.ipk" "/proc/$NS_PID/root/tmp/sluice_0.1.0-r2_all.ipk"; echo "QSSUB $step the r2 package copied to /tmp again (scp)"; return;;
	esac
	in_tree "$run" > "$work/out" 2>&1
	echo "QS $step rc=$? $line"
	sed 's/^/QSOUT /' "$work/out" | head -n 8
}

while IFS=$'\t' read -r step line; do
	case "$step" in 2|3|4|5|6|7|8) ;; *) continue;; esac
	case "$line" in ''|'#'*) continue;; esac
	run_line "$step" "$line"
	case "$step:$line" in
		2:'opkg install /tmp/sluice'*)
			wait_log 'sluice running'
			echo "QSCHECK step2-running $(in_tree 'logread -e sluice' | grep -c 'sluice running')"
			echo "QSCHECK step2-reconcile $(in_tree 'logread -e sluice' | grep -c 'cannot reconcile with portal yet')";;
		3:'ubus call sluice pricing')
			echo "QSCHECK step3-price $(in_tree 'ubus call sluice pricing | jsonfilter -e "@.plans[@.id=\"time\"].price_per_step"')";;
		5:'uci commit sluice && /etc/init.d/sluice restart'*)
			wait_log 'x402 LAN endpoint\|listening'
			in_tree 'for i in $(seq 1 60); do wget -qO- http://192.168.1.1:2122/ >/dev/null 2>&1 && break; sleep 0.5; done'
			echo "QSCHECK step5-endpoint $(in_tree 'wget -qO- http://192.168.1.1:2122/ | jsonfilter -e "@.plans[*].id"' | tr '\n' ,)"
			echo "QSCHECK step5-portal $(in_tree 'wget -qO- http://192.168.1.1:2122/portal | grep -c "<html"')";;
		6:'uci commit opennds')
			echo "QSCHECK step6-opennds $(in_tree 'uci -q get opennds.@opennds[0].login_option_enabled; uci -q get opennds.@opennds[0].themespec_path; uci -q get opennds.@opennds[0].users_to_router' | tr '\n' ,)"
			echo "QSCHECK step6-theme $(in_tree 'p=$(uci -q get opennds.@opennds[0].themespec_path); [ -x "$p" ] && head -c 2 "$p"')";;
		6:'/etc/init.d/sluice restart')
			# the init script returns before the daemon has registered on the bus: the admin's next command waits for it
			in_tree 'for i in $(seq 1 60); do ubus -t 1 list sluice >/dev/null 2>&1 && break; sleep 0.5; done';;
		7:'ubus call sluice grant'*)
			echo "QSCHECK step7-session $(in_tree 'ubus call sluice sessions' | grep -c "$PHONE")"
			wait_log 'session started'
			echo "QSCHECK step7-log $(in_tree 'logread -e sluice | tail' | grep -c "session started.*$PHONE")";;
		8:"uci set sluice.main.enabled='0'"*)
			in_tree 'for i in $(seq 1 60); do ps w | grep -q "[s]luice.mjs daemon" || break; sleep 0.5; done'
			echo "QSCHECK step8-off $(daemons)";;
		8:"uci set sluice.main.enabled='1'"*)
			in_tree 'for i in $(seq 1 60); do ubus -t 1 list sluice >/dev/null 2>&1 && break; sleep 0.5; done'
			echo "QSCHECK step8-on $(daemons) $(in_tree 'ubus call sluice sessions' | grep -c "$PHONE")";;
		8:'opkg install /tmp/sluice_0.1.0-r2'*)
			in_tree 'for i in $(seq 1 60); do ubus -t 1 list sluice >/dev/null 2>&1 && break; sleep 0.5; done'
			echo "QSCHECK step8-upgraded $(in_tree 'opkg status sluice' | grep -c 'Version: 0.1.0-r2') $(daemons) $(in_tree 'uci get sluice.time.price_per_step') $(in_tree 'ubus call sluice sessions' | grep -c "$PHONE")";;
		8:'opkg remove'*)
			in_tree 'for i in $(seq 1 60); do ps w | grep -q "[s]luice.mjs daemon" || break; sleep 0.5; done'
			echo "QSCHECK step8-removed $(daemons) $(in_tree '[ -e /etc/init.d/sluice ] && echo init-left || echo init-gone') $(in_tree '[ -d /etc/sluice ] && echo journal-kept || echo journal-gone') $(in_tree 'ls /etc/config | grep sluice | tr "\n" ,')";;
	esac
done < "$work/lines"
echo "QSCHECK tags node=$(in_tree 'logread' | grep -c ' node\[')"
echo "DONE"
