# sluice: OpenWrt package Makefile, and developer targets outside an OpenWrt SDK.
#
# In an SDK (24.10 → .ipk, 25.12 → .apk): put this checkout (with dist/ built by `npm ci && npm run build`)
# under package/sluice and run `make package/sluice/compile`. Nothing is compiled for the target: sluice is
# plain JavaScript bundled by esbuild, so the package is PKGARCH all. It needs a node >= 20 runtime on the
# router: openwrt-24.10's packages feed has `node` (x86_64, i386, arm/aarch64 with FPU, no MIPS); from 25.12
# on, lang/node is host-only, so the runtime must come from another feed.
#
# Outside an SDK (no TOPDIR): `make build`, `make test`, `make ipk`, `make package-files` (see the bottom half).

ifneq ($(TOPDIR),)

include $(TOPDIR)/rules.mk

PKG_NAME:=sluice
PKG_VERSION:=0.1.0
PKG_RELEASE:=1
PKG_LICENSE:=MIT

include $(INCLUDE_DIR)/package.mk

define Package/sluice
	SECTION:=net
	CATEGORY:=Network
	SUBMENU:=Captive Portals
	TITLE:=Pay-per-use WiFi: time and data sessions through openNDS
	DEPENDS:=+node
	PKGARCH:=all
	# Members of this group may call the portal's methods (purchase, receipt, quote, session, pricing) on ubus without
	# being root: /usr/share/acl.d/sluice.json. Run a portal CGI or FAS script as this user.
	USERID:=sluice-portal=472:sluice-portal=472
endef

define Package/sluice/description
sluice sells time- or data-based WiFi sessions (x402 USDC payments, x402 escrow sessions, RADIUS vouchers
or an admin grant), opens the captive portal's gate (openNDS / nodogsplash) for the paying client, meters
that client's usage and closes the gate when the allotment is spent. Driven over ubus (object `sluice`);
a LAN pay page for customers; syncs to RADIUS and MQTT.
endef

define Package/sluice/conffiles
/etc/config/sluice
/etc/config/sluice_secrets
endef

define Build/Prepare
	mkdir -p $(PKG_BUILD_DIR)
endef

define Build/Configure
endef

# The bundle is built in the checkout (npm is not part of the SDK); refuse to package without it.
define Build/Compile
	@test -f ./dist/sluice.mjs -a -f ./dist/evm.mjs -a -f ./dist/mqtt.mjs -a -f ./dist/cashu.mjs -a -f ./dist/usage-worker.mjs -a -f ./dist/worker.js -a -f ./dist/portal/batch.js || \
		{ echo "sluice: dist/ is missing: run 'npm ci && npm run build' in the checkout first" >&2; exit 1; }
endef

define Package/sluice/install
	$(INSTALL_DIR) $(1)/usr/share/sluice
	$(INSTALL_BIN) ./dist/sluice.mjs $(1)/usr/share/sluice/sluice.mjs
	# sluice's own code beside it, split where it is loaded later (a payment method's when the config switches it on):
	# scripts/build.mjs.
	$(INSTALL_DATA) ./dist/sluice-*.mjs $(1)/usr/share/sluice/
	$(INSTALL_DATA) ./dist/evm.mjs $(1)/usr/share/sluice/evm.mjs
	$(INSTALL_DATA) ./dist/mqtt.mjs $(1)/usr/share/sluice/mqtt.mjs
	$(INSTALL_DATA) ./dist/cashu.mjs $(1)/usr/share/sluice/cashu.mjs
	$(INSTALL_DATA) ./dist/usage-worker.mjs $(1)/usr/share/sluice/usage-worker.mjs
	# Piscina's thread bootstrap (CommonJS), loaded from next to the bundle.
	$(INSTALL_DATA) ./dist/worker.js $(1)/usr/share/sluice/worker.js

	# The command: a script that runs node on the bundle with the flags the package ships (files/usr/bin/sluice).
	$(INSTALL_DIR) $(1)/usr/bin
	$(INSTALL_BIN) ./files/usr/bin/sluice $(1)/usr/bin/sluice

	$(INSTALL_DIR) $(1)/etc/init.d
	$(INSTALL_BIN) ./files/etc/init.d/sluice $(1)/etc/init.d/sluice

	$(INSTALL_DIR) $(1)/etc/config
	$(INSTALL_CONF) ./files/etc/config/sluice $(1)/etc/config/sluice
	# The secrets (RADIUS, MQTT, hook, PC-sync keys): root-only, and in LuCI the write role's only (luci-app-sluice's ACL).
	$(INSTALL_CONF) ./files/etc/config/sluice_secrets $(1)/etc/config/sluice_secrets

	# Moves secrets an earlier version kept in /etc/config/sluice into sluice_secrets (default_postinst runs it).
	$(INSTALL_DIR) $(1)/etc/uci-defaults
	$(INSTALL_BIN) ./files/etc/uci-defaults/90-sluice-secrets $(1)/etc/uci-defaults/90-sluice-secrets
	# Puts sluice's files in reload_config's baseline, so that the first uci commit + reload_config after an install is seen.
	$(INSTALL_BIN) ./files/etc/uci-defaults/91-sluice-reload-config $(1)/etc/uci-defaults/91-sluice-reload-config

	# ubusd's ACL for non-root callers (the portal user): root-owned, not group/world writable, or ubusd skips it.
	$(INSTALL_DIR) $(1)/usr/share/acl.d
	$(INSTALL_DATA) ./files/usr/share/acl.d/sluice.json $(1)/usr/share/acl.d/sluice.json

	# The customer's pay page, served by the LAN x402 endpoint at /portal (found next to the bundle): every file of its
	# directory (a part of the page adds its file there, nothing here), then what the build puts in dist/portal (batch.js,
	# the batch-settlement signing bundle built from src/browser/batch.ts; the build writes the same file to both).
	$(INSTALL_DIR) $(1)/usr/share/sluice/portal
	$(INSTALL_DATA) ./files/usr/share/sluice/portal/* $(1)/usr/share/sluice/portal/
	$(INSTALL_DATA) ./dist/portal/* $(1)/usr/share/sluice/portal/

	# openNDS ThemeSpec that sends a new client to the pay page (opennds: login_option_enabled 3, themespec_path).
	$(INSTALL_DIR) $(1)/usr/lib/opennds
	$(INSTALL_BIN) ./files/usr/lib/opennds/theme_sluice.sh $(1)/usr/lib/opennds/theme_sluice.sh
	# openNDS 10's BinAuth in place of its binauth_log.sh (~0.3 s of CPU per auth and deauth): docs/quickstart.md.
	$(INSTALL_BIN) ./files/usr/lib/opennds/binauth_sluice.sh $(1)/usr/lib/opennds/binauth_sluice.sh

	# sysupgrade keeps the router's Nostr key (TollGate: the same router to its clients after a reflash).
	$(INSTALL_DIR) $(1)/lib/upgrade/keep.d
	$(INSTALL_DATA) ./files/lib/upgrade/keep.d/sluice $(1)/lib/upgrade/keep.d/sluice
endef

$(eval $(call BuildPackage,sluice))

else
# ---------------------------------------------------------------------------------------------------------
# Developer targets (no OpenWrt SDK).

NPM ?= npm
# Where package-files stages the router's file tree (dist/ is ignored by git).
STAGE ?= dist/root

.PHONY: all build test ipk apk package-files clean help

all: build

help:
	@echo "make build          bundle dist/ (sluice.mjs, usage-worker.mjs, worker.js) (npm run build)"
	@echo "make test           typecheck, bundle and run every test (npm test)"
	@echo "make ipk            dist/ipk/sluice_*_all.ipk and luci-app-sluice_*_all.ipk for OpenWrt 24.10 (opkg), no SDK"
	@echo "make apk APK=...    dist/apk/*.apk for OpenWrt 25.12 with apk-tools 3's 'apk mkpkg' (not shipped here)"
	@echo "make package-files  stage the files of sluice and luci-app-sluice as on the router under $(STAGE)/"

build:
	$(NPM) run build

test:
	$(NPM) test

# Installable packages for OpenWrt 24.10's opkg, built without an SDK (scripts/package.mjs reads this Makefile
# and luci-app/Makefile for versions, dependencies and conffiles). Install: opkg install ./sluice_*.ipk
ipk: build
	node scripts/package.mjs dist/ipk

# OpenWrt 25.12 packages (APKv3) the way the SDK's package-pack.mk builds them; needs apk-tools 3 (`apk mkpkg`),
# e.g. built from its public source: make apk APK=/path/to/apk. Unsigned: install with --allow-untrusted.
APK ?= apk
apk: build
	APK=$(APK) node scripts/package.mjs --apk dist/apk

# The files of sluice and luci-app-sluice as opkg installs them: the packages `make ipk` builds, unpacked (one list of
# what goes where, scripts/package.mjs; a list of its own here had gone stale, without the lazily loaded bundles).
package-files: build
	rm -rf $(STAGE) $(STAGE).ipk
	node scripts/package.mjs $(STAGE).ipk
	mkdir -p $(STAGE)
	for p in $(STAGE).ipk/sluice_*_all.ipk $(STAGE).ipk/luci-app-sluice_*_all.ipk; do \
		tar -xzOf "$$p" ./data.tar.gz | tar -xzf - -C $(STAGE) || exit 1; \
	done
	rm -rf $(STAGE).ipk
	@echo "staged in $(STAGE)/"

clean:
	rm -rf $(STAGE) $(STAGE).ipk

endif
