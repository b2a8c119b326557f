#!/bin/bash
# A real LuCI 24.10 (ubusd, rpcd, uhttpd with ucode and luci-base) with this repository's LuCI app and package files
# installed where the packages put them, run chrooted in a private mount namespace. The tree (ROOT) is built by hand
# from public sources outside this repository (docs/luci-check.md says what and how); nothing of it is committed.
# Usage (as root): run.sh ROOT WORK PORT REPO. Copies ROOT to WORK/root, installs the app, starts ubusd, rpcd and
# uhttpd on 127.0.0.1:PORT and stays in the foreground until killed; the ubus socket is WORK/root/var/run/ubus/ubus.sock
# (the sluice daemon runs outside, on that socket). WORK/ready appears once uhttpd answers. `nsenter -t <pid> -m
# chroot WORK/root /bin/sh -c …` runs a command on the "router" (busybox applets, uci, uhttpd -m).
set -eu
ROOT=$1 WORK=$2 PORT=$3 REPO=$4
HERE=$(cd "$(dirname "$0")" && pwd)
R=$WORK/root
cp -a "$ROOT" "$R"
mkdir -p "$R"/{dev,proc,tmp,var/run/ubus,bin,usr/lib/x86_64-linux-gnu,usr/lib64,usr/share/sluice/portal,etc/config}
ln -sfn usr/lib64 "$R/lib64"
[ -e "$R/lib" ] || ln -s usr/lib "$R/lib"
# the package files: what `opkg install sluice luci-app-sluice` puts in place
cp -a "$REPO"/luci-app/htdocs/. "$R/www/"
cp -a "$REPO"/luci-app/root/. "$R/"
cp "$REPO/files/usr/share/sluice/portal/qr.js" "$R/usr/share/sluice/portal/qr.js"
cp "$REPO/files/etc/config/sluice" "$R/etc/config/sluice"
cp "$HERE/system-standin.uc" "$R/usr/share/system-standin.uc"
# rpcd's own ACL for the login page; accounts ubusd can name
cp "$ROOT/../src/rpcd/unauthenticated.json" "$R/usr/share/rpcd/acl.d/unauthenticated.json"
printf 'root:x:0:0:root:/root:/bin/sh\nubus:x:81:81:ubus:/var/run/ubus:/bin/false\n' > "$R/etc/passwd"
printf 'root:x:0:\nubus:x:81:ubus\n' > "$R/etc/group"
# rpcd's /etc/config/rpcd as its package ships it: root logs in with the system password ($p$root: /etc/shadow)
printf '%s\n' 'config rpcd' '	option socket /var/run/ubus/ubus.sock' '	option timeout 30' '' 'config login' \
	"	option username 'root'" "	option password '\$p\$root'" "	list read '*'" "	list write '*'" > "$R/etc/config/rpcd"
# cgi-io as LuCI's file upload/download helpers (copied: uhttpd will not run a link leaving the docroot)
for n in cgi-exec cgi-download cgi-upload cgi-backup; do cp "$R/usr/sbin/cgi-io" "$R/www/cgi-bin/$n"; done
touch "$R/bin/sh" "$R/usr/bin/env" "$R/bin/busybox"
for a in cat ls grep sed touch rm mkdir sleep; do ln -sf busybox "$R/bin/$a"; done
for d in null zero urandom random; do touch "$R/dev/$d"; done
cat > "$WORK/inner.sh" <<INNER
set -eu
R=$R
mount --bind /usr/lib/x86_64-linux-gnu "\$R/usr/lib/x86_64-linux-gnu"
mount --bind /usr/lib64 "\$R/usr/lib64"
mount --bind /bin/dash "\$R/bin/sh"
mount --bind /usr/bin/env "\$R/usr/bin/env"
mount --bind "$(command -v busybox)" "\$R/bin/busybox"
for d in null zero urandom random; do mount --bind /dev/\$d "\$R/dev/\$d"; done
mount -t proc proc "\$R/proc"
# root's password (LAB_ROOT_PASSWORD, default admin) as passwd sets it
printf 'root:%s:20000:0:99999:7:::\n' "\$(chroot "\$R" /usr/bin/uhttpd -m "${LAB_ROOT_PASSWORD:-admin}")" > "\$R/etc/shadow"
# what first boot runs: the theme registers itself in /etc/config/luci
for f in "\$R"/etc/uci-defaults/*; do chroot "\$R" /bin/sh "/etc/uci-defaults/\${f##*/}" && rm -f "\$f"; done
chroot "\$R" /usr/sbin/ubusd -s /var/run/ubus/ubus.sock &
for i in \$(seq 1 300); do [ -S "\$R/var/run/ubus/ubus.sock" ] && break; sleep 0.05; done
chmod 666 "\$R/var/run/ubus/ubus.sock"
chroot "\$R" /usr/sbin/rpcd -s /var/run/ubus/ubus.sock &
chroot "\$R" /usr/bin/ucode /usr/share/system-standin.uc &
chroot "\$R" /usr/bin/uhttpd -f -p 127.0.0.1:$PORT -h /www -x /cgi-bin -u /ubus -o /cgi-bin/luci \
	-O /usr/share/ucode/luci/uhttpd.uc -t 60 &
for i in \$(seq 1 100); do
	if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then touch "$WORK/ready"; break; fi
	sleep 0.1
done
trap 'kill \$(jobs -p) 2>/dev/null; exit 0' TERM INT
wait
INNER
exec unshare -m --propagation private /bin/bash "$WORK/inner.sh"
