'use strict';
'require baseclass';
'require fs';
'require rpc';

/*
 * What the Sessions, Settings and Overview views share: the ubus calls (each one's errors turned into the daemon's own
 * message), the service's state (rpcd's `rc list`) and control (its own init script only: the ACL grants exec of
 * /etc/init.d/sluice, not rc's `init`, which would start or stop any service), and formatting of prices, amounts, states and causes.
 */

/* No `expect`/`reject`: a failing call then resolves to the reply's {error: {code, message}} (or a bare status number)
 * instead of LuCI's generic "failed with ubus code 2", and unwrap() raises it with the daemon's words. */
var callStats = rpc.declare({ object: 'sluice', method: 'stats' });
var callSessions = rpc.declare({ object: 'sluice', method: 'sessions', params: [ 'state', 'offset', 'limit' ] });
var callPricing = rpc.declare({ object: 'sluice', method: 'pricing' });
var callVoucherList = rpc.declare({ object: 'sluice', method: 'voucher_list' });
var callQuote = rpc.declare({ object: 'sluice', method: 'quote', params: [ 'plan', 'steps' ] });
var callTerminate = rpc.declare({ object: 'sluice', method: 'terminate', params: [ 'mac' ] });
var callGrantSeconds = rpc.declare({ object: 'sluice', method: 'grant', params: [ 'mac', 'seconds' ] });
var callGrantBytes = rpc.declare({ object: 'sluice', method: 'grant', params: [ 'mac', 'bytes' ] });
var callExtendSeconds = rpc.declare({ object: 'sluice', method: 'extend', params: [ 'mac', 'seconds' ] });
var callExtendBytes = rpc.declare({ object: 'sluice', method: 'extend', params: [ 'mac', 'bytes' ] });
var callReload = rpc.declare({ object: 'sluice', method: 'reload' });
var callMove = rpc.declare({ object: 'sluice', method: 'move', params: [ 'id', 'to' ] });
var callRemoveDevice = rpc.declare({ object: 'sluice', method: 'remove_device', params: [ 'mac' ] });
var callRcList = rpc.declare({ object: 'rc', method: 'list', params: [ 'name' ], expect: { '': {} } });

var STATES = {
	PENDING: _('Pending'),
	ACTIVE: _('Active'),
	EXPIRED: _('Expired'),
	TERMINATED: _('Ended')
};

/* Every end cause the daemon has (src/sessions/model.ts END_CAUSES; test/config/luci.test.ts keeps them in step). */
var CAUSES = {
	'time-limit': _('Time used up'),
	'data-limit': _('Data used up'),
	'admin': _('Disconnected by admin'),
	'disconnect': _('Disconnected upstream (RADIUS)'),
	'pc-logout': _('Logged out'),
	'device-limit': _('Device limit reached'),
	'portal-lost': _('Left the portal'),
	'moved': _('Moved to another router of the venue')
};

function SluiceCallError(message, code) {
	var e = new Error(message);
	e.name = 'SluiceCallError';
	e.code = code;
	return e;
}

/* A call's result, or an Error carrying the daemon's message and code. */
function unwrap(res) {
	if (typeof res === 'number')
		throw SluiceCallError(res === 0 ? _('Empty reply') : rpc.getStatusText(res), res);
	if (res && typeof res.error === 'object' && res.error !== null)
		throw SluiceCallError(res.error.message || res.error.code, res.error.code);
	return res;
}

/* value ÷ 10^decimals with every digit kept (BigInt): 250000, 6 → "0.25". */
function formatUnits(value, decimals) {
	if (value == null || !/^\d+$/.test(String(value)))
		return String(value);
	var d = Number(decimals) || 0;
	var s = String(value).replace(/^0+(?=\d)/, '');
	if (d === 0)
		return s;
	s = s.length <= d ? '0'.repeat(d - s.length + 1) + s : s;
	var whole = s.slice(0, s.length - d), frac = s.slice(s.length - d).replace(/0+$/, '');
	return frac ? whole + '.' + frac : whole;
}

/* The UI language LuCI runs in, for numbers and dates people read: <html lang> (LuCI 24.10's header writes its
 * language there; its L.env has no lang), else L.env.lang, else English. Not the browser's locale: the page's words
 * are in LuCI's language, so its figures are too. */
function uiLanguage() {
	var lang = (typeof document !== 'undefined' && document.documentElement && document.documentElement.lang)
		|| (typeof L !== 'undefined' && L.env && L.env.lang) || 'en';
	return String(lang).replace('_', '-');
}

/* A plain decimal ("1234.5") as the UI language writes it ("1.234,5" in German), every digit kept. */
function localNumber(text) {
	var m = /^(\d+)(?:\.(\d+))?$/.exec(String(text));
	if (!m)
		return String(text);
	var lang = uiLanguage(), whole, point;
	try {
		whole = BigInt(m[1]).toLocaleString(lang);
		point = (1.5).toLocaleString(lang).charAt(1);
	}
	catch (e) {
		whole = m[1];
		point = '.';
	}
	return m[2] ? whole + point + m[2] : whole;
}

function price(value, decimals, currency) {
	return localNumber(formatUnits(value, decimals)) + (currency ? ' ' + currency : '');
}

/* Binary units (how sizes are usually set: 100MiB) and decimal ones (100MB). */
var BINARY_UNITS = [ [ 'TiB', 1099511627776 ], [ 'GiB', 1073741824 ], [ 'MiB', 1048576 ], [ 'KiB', 1024 ] ];
var DECIMAL_UNITS = [ [ 'TB', 1e12 ], [ 'GB', 1e9 ], [ 'MB', 1e6 ], [ 'kB', 1e3 ] ];

/* A byte count in the largest unit that says it exactly in at most two decimals ("1 GiB", not "1024.00 MiB"; "1.5 GiB";
 * "100 MB"); otherwise in the largest binary unit it reaches, rounded to two decimals. Exact past 2^53 (BigInt). */
function size(bytes) {
	if (!/^\d+$/.test(String(bytes)))
		return String(bytes);
	var n = BigInt(String(bytes)), hundred = BigInt(100);
	var show = function(hundredths, unit) {
		var text = (hundredths / hundred).toString() + '.' + (hundredths % hundred).toString().padStart(2, '0');
		return localNumber(text.replace(/\.?0+$/, '')) + ' ' + unit;
	};
	/* largest first, binary and decimal interleaved (TiB, TB, GiB, GB, …); an exact figure only below 1024 of its
	 * unit: usage counted in KiB is exact in KiB, and "1,042,327 KiB" is not how anyone reads a gigabyte */
	var units = BINARY_UNITS.concat(DECIMAL_UNITS).sort(function(x, y) { return y[1] - x[1]; });
	for (var i = 0; i < units.length; i++) {
		var u = BigInt(units[i][1]);
		if (n >= u && (i === 0 || n < u * BigInt(1024)) && (n * hundred) % u === BigInt(0))
			return show(n * hundred / u, units[i][0]);
	}
	for (var j = 0; j < BINARY_UNITS.length; j++) {
		var b = BigInt(BINARY_UNITS[j][1]);
		if (n >= b)
			return show((n * hundred + b / BigInt(2)) / b, BINARY_UNITS[j][0]);
	}
	return localNumber(n.toString()) + ' B';
}

/* Bytes arrive as decimal strings (they may exceed 2^53 in principle); seconds as decimal strings or numbers. */
function amount(metric, value) {
	if (value == null || value === '')
		return '-';
	if (metric === 'bytes')
		return /^\d+$/.test(String(value)) ? size(value) : String(value);
	var n = Number(value);
	if (!isFinite(n))
		return String(value);
	return '%t'.format(Math.floor(n));
}

/* A length of time as a person says it: "30 min", "2 h", "1 h 30 min", "1 day", "2 days 3 h"; every unit that is not
 * zero, so it stays exact. For what a plan or a ticket buys: LuCI's %t reads like a stopwatch ("0h 30m 0s"). */
function duration(seconds) {
	var n = Number(seconds);
	if (!isFinite(n) || n < 0 || String(seconds) === '')
		return String(seconds);
	n = Math.floor(n);
	var d = Math.floor(n / 86400), h = Math.floor(n % 86400 / 3600), m = Math.floor(n % 3600 / 60), s = n % 60, parts = [];
	if (d)
		parts.push((d === 1 ? _('%d day') : _('%d days')).format(d));
	if (h)
		parts.push(_('%d h').format(h));
	if (m)
		parts.push(_('%d min').format(m));
	if (s || !parts.length)
		parts.push(_('%d s').format(s));
	return parts.join(' ');
}

function metricName(metric) {
	return metric === 'bytes' ? _('Data') : _('Time');
}

function timestamp(unixSeconds) {
	if (!unixSeconds)
		return '-';
	var d = new Date(unixSeconds * 1000);
	try {
		return d.toLocaleString(uiLanguage());
	}
	catch (e) {
		return d.toLocaleString();
	}
}

/* The plan whose currency and decimals price what a session paid: the one it was sold under, or, when that plan was
 * renamed or removed in Settings (sessions outlive it: ended ones are kept), a plan with the payments' asset (compared
 * case-insensitively). null when neither is there: the amount is then in the asset's smallest units. */
function paidPlan(s, plans) {
	if (plans[s.plan] && plans[s.plan].decimals != null)
		return plans[s.plan];
	var assets = paidAssets(s);
	for (var id in plans)
		if (plans[id].asset && plans[id].decimals != null && assets.indexOf(String(plans[id].asset).toLowerCase()) >= 0)
			return plans[id];
	return null;
}

/* Assets of a session's paid (not granted) payments, lower case. */
function paidAssets(s) {
	return (Array.isArray(s.payments) ? s.payments : [])
		.filter(function(p) { return p.method !== 'grant' && p.asset; })
		.map(function(p) { return String(p.asset).toLowerCase(); });
}

/* An error for the admin to read: the daemon's (SluiceCallError) says so ("sluice: …"), the page's own checks do not. */
function errorText(err) {
	var message = err && err.message ? err.message : String(err);
	return err && err.name === 'SluiceCallError' ? _('sluice: %s').format(message) : message;
}

/* Whether this user may change things here (LuCI's ACL: read-only users get false). */
function writable() {
	return typeof L.hasViewPermission === 'function' ? L.hasViewPermission() !== false : true;
}

return baseclass.extend({
	STATES: STATES,
	CAUSES: CAUSES,
	unwrap: unwrap,
	formatUnits: formatUnits,
	price: price,
	paidPlan: paidPlan,
	paidAssets: paidAssets,
	amount: amount,
	size: size,
	duration: duration,
	localNumber: localNumber,
	errorText: errorText,
	metricName: metricName,
	timestamp: timestamp,
	writable: writable,

	stateName: function(state) { return STATES[state] || state; },
	causeName: function(cause) { return cause ? (CAUSES[cause] || cause) : '-'; },

	stats: function() { return callStats().then(unwrap); },
	/* One page: {sessions, total, offset, limit, more}. state: LIVE, ENDED or undefined (all); undefined arguments are not sent. */
	sessions: function(state, offset, limit) { return callSessions(state, offset, limit).then(unwrap); },
	/* A live session whose device the portal has not let through yet (a grant to a MAC not on the portal). */
	gatePending: function(s) { return (s.state === 'ACTIVE' || s.state === 'PENDING') && s.gate === 'pending'; },
	/* Live sessions by what the admin should read: active (the device is through), gate pending (paid or granted, the
	 * portal has not let it through), pending (not started). A gate-pending session is ACTIVE to the daemon but not
	 * active to anyone watching the router. */
	countLive: function(list) {
		var c = { active: 0, gatePending: 0, pending: 0 };
		var self = this;
		(list || []).forEach(function(s) {
			if (self.gatePending(s))
				c.gatePending++;
			else if (s.state === 'ACTIVE')
				c.active++;
			else if (s.state === 'PENDING')
				c.pending++;
		});
		return c;
	},
	/* stats.trials as the admin reads it: free trials granted and refused since the daemon started, and the devices the
	 * trial ledger remembers; null when the daemon does not report trials. */
	trialsText: function(stats) {
		var t = stats && stats.trials;
		if (!t)
			return null;
		if (t.available === false)
			return _('unknown: the trial ledger could not be read (see the system log)');
		return _('%d granted, %d refused since start; %d devices remembered').format(t.granted || 0, t.refused || 0, t.remembered || 0);
	},
	/* countLive over every live session the daemon lists (pages of 500, at most 20). */
	liveCounts: function() {
		var self = this, all = [];
		function next(offset, pages) {
			return self.sessions('LIVE', offset, 500).then(function(page) {
				all = all.concat(page.sessions || []);
				if (page.more && pages + 1 < 20 && (page.sessions || []).length)
					return next(offset + page.sessions.length, pages + 1);
				return self.countLive(all);
			});
		}
		return next(0, 0);
	},
	pricing: function() { return callPricing().then(unwrap); },
	vouchers: function() { return callVoucherList().then(unwrap); },
	quote: function(plan, steps) { return callQuote(plan, String(steps)).then(unwrap).then(function(r) { return r.quote; }); },
	terminate: function(mac) { return callTerminate(mac).then(unwrap); },
	/* A session to another device (its purchase follows the MAC: a customer's new phone, a randomized MAC). */
	move: function(id, to) { return callMove(id, to).then(unwrap); },
	/* A joined device out of a session of several devices (not the buyer's: Disconnect ends the session). */
	removeDevice: function(mac) { return callRemoveDevice(mac).then(unwrap); },
	grant: function(mac, metric, value) {
		return (metric === 'bytes' ? callGrantBytes : callGrantSeconds)(mac, value).then(unwrap);
	},
	/* Adds to a live session only (never starts one: a session that ended meanwhile is ERR_SESSION_NOT_FOUND). */
	extend: function(mac, metric, value) {
		return (metric === 'bytes' ? callExtendBytes : callExtendSeconds)(mac, value).then(unwrap);
	},
	reload: function() { return callReload().then(unwrap); },

	/* {running, enabled} from rpcd's rc object; null when rc is not there. */
	service: function() {
		return callRcList('sluice').then(function(r) {
			var s = r && r.sluice;
			return s ? { running: !!s.running, enabled: !!s.enabled } : null;
		}).catch(function() { return null; });
	},
	/*
	 * After Start, Stop or Restart: asks rc (and, to start, the daemon) every second until the service is in the state
	 * the action leads to, or `tries` runs out. {confirmed, running}: the state it ended in, confirmed or not.
	 */
	awaitService: function(action, tries) {
		var self = this, want = action !== 'stop';
		var wait = function(ms) { return new Promise(function(resolve) { window.setTimeout(resolve, ms); }); };
		function check(left) {
			return self.service().then(function(svc) {
				var rcRunning = !!(svc && svc.running);
				if (!want)
					return { done: !rcRunning, running: rcRunning };
				/* started: procd runs it and it answers on ubus */
				return rcRunning ? self.stats().then(function() { return { done: true, running: true }; }, function() { return { done: false, running: true }; })
					: { done: false, running: false };
			}).then(function(state) {
				if (state.done || left <= 1)
					return { confirmed: state.done, running: state.running };
				return wait(1000).then(function() { return check(left - 1); });
			});
		}
		return check(tries);
	},
	serviceAction: function(action) {
		return fs.exec('/etc/init.d/sluice', [ action ]).then(function(res) {
			if (res.code !== 0)
				throw SluiceCallError((res.stderr || res.stdout || '').trim() || _('/etc/init.d/sluice %s failed (exit %d)').format(action, res.code), res.code);
			return res;
		});
	}
});
