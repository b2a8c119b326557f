#!/bin/sh
# sluice's openNDS ThemeSpec (openNDS 9/10): the splash page openNDS shows a new client points it at sluice's pay page
# on the LAN x402 endpoint (http://<http.listen>/portal), where the customer sees the plans and pays from a browser
# wallet or types a voucher. sluice opens the gate itself (ndsctl auth) once the payment is taken, so this theme never
# asks openNDS to authenticate the client.
#
# libopennds.sh sources this file and calls header, generate_splash_sequence and footer. Enable with:
#   uci set opennds.@opennds[0].login_option_enabled='3'
#   uci set opennds.@opennds[0].themespec_path='/usr/lib/opennds/theme_sluice.sh'
#   uci add_list opennds.@opennds[0].users_to_router='allow tcp port 2122'   # the port of sluice.http.listen
#   uci add_list opennds.@opennds[0].users_to_router='allow tcp port 2121'   # the port of sluice.tollgate.listen, if set
#   uci commit opennds; /etc/init.d/opennds restart
# shellcheck shell=ash
# shellcheck disable=SC2034 # title and the quota variables are read by libopennds.sh

title="theme_sluice"

# No theme-wide quotas or rates: sluice meters and ends the session itself.
session_length="0"
upload_rate="0"
download_rate="0"
upload_quota="0"
download_quota="0"

# Nothing to download for this theme.
download_image_files() { :; }
download_data_files() { :; }

# The pay page's URL from sluice's config: http://<listen>/portal, or empty when the endpoint is off.
sluice_portal_url() {
	local listen
	listen="$(uci -q get sluice.http.listen)"
	case "$listen" in
		*:[0-9]*) printf 'http://%s/portal' "$listen" ;;
		*) printf '' ;;
	esac
}

# Text for HTML: the gateway name comes from the openNDS config.
sluice_html_escape() {
	printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g' -e "s/'/\&#39;/g"
}

header() {
	local name
	name="$(sluice_html_escape "${gatewayname:-WiFi}")"
	echo "<!DOCTYPE html>
<html lang=\"en\">
<head>
<meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<meta http-equiv=\"Cache-Control\" content=\"no-cache, no-store, must-revalidate\">
<title>$name</title>
<style>
body { margin: 0; font-family: system-ui, sans-serif; background: #f2f4f7; color: #1b2430; }
main { max-width: 34em; margin: 0 auto; padding: 1.2em; }
a.button { display: inline-block; padding: .6em 1.2em; border-radius: 5px; background: #1f6feb; color: #fff; text-decoration: none; }
</style>
</head>
<body>
<main>
<h1>$name</h1>"
}

footer() {
	echo "</main>
</body>
</html>"
	exit 0
}

# In a venue (sluice.main.venue, docs/roaming.md): openNDS runs this when a device loads the splash, the page it
# redirects the device's captive probe to (the probe itself runs no script: openNDS answers it with a redirect), which
# the device's captive-portal window loads. That is the first sign openNDS gives that a device with a session bought at
# another router of the venue arrived. sluice is asked to claim that session now, in the background (the splash is not
# held up), and keeps claiming it until it moved here. Only a plain MAC is passed on: the value comes from openNDS's
# query string.
sluice_venue_claim() {
	local mac="${clientmac:-}" x='[0-9a-fA-F][0-9a-fA-F]'
	# shellcheck disable=SC2254 # $x is a glob on purpose: two hex digits
	case "$mac" in
		$x:$x:$x:$x:$x:$x) ;;
		*) return 0 ;;
	esac
	[ -n "$(uci -q get sluice.main.venue)" ] || return 0
	(ubus -t 5 call sluice venue_claim "{\"mac\":\"$mac\"}" >/dev/null 2>&1 &)
}

generate_splash_sequence() {
	local url
	sluice_venue_claim
	url="$(sluice_portal_url)"
	if [ -z "$url" ]; then
		echo "<p>Internet access is sold here, but the payment page is not switched on yet. Please ask the staff.</p>"
		footer
	fi
	# A meta refresh, not JavaScript: captive portal browsers may run no script, and this also works from a bookmark.
	echo "<meta http-equiv=\"refresh\" content=\"0; url=$url\">
<p>Internet access here is paid per use: time or data, with a crypto wallet or a voucher.</p>
<p><a class=\"button\" href=\"$url\">Buy access</a></p>
<p>If your wallet app has a browser, open <strong>$url</strong> there to pay from it.</p>"
	footer
}
