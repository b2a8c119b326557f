'use strict';
'require view';
'require form';
'require uci';
'require dom';
'require request';
'require ui';
'require rpc';
'require sluice.common as common';

// Validation mirrors the daemon's loader (src/config/load.ts, docs/configuration.md): what LuCI accepts, the
// daemon accepts; cross-field rules come from the same table (sluice/rules.json). Should the daemon still find a
// problem, it runs without that part (a plan left out, a section disabled) and this page lists it at the top.

var BYTE_UNITS = {
	'': 1, 'B': 1, 'k': 1e3, 'kB': 1e3, 'K': 1e3, 'KB': 1e3, 'M': 1e6, 'MB': 1e6, 'G': 1e9, 'GB': 1e9, 'T': 1e12, 'TB': 1e12,
	'Ki': 1024, 'KiB': 1024, 'Mi': 1048576, 'MiB': 1048576, 'Gi': 1073741824, 'GiB': 1073741824,
	'Ti': 1099511627776, 'TiB': 1099511627776
};
var SECOND_UNITS = { '': 1, 's': 1, 'm': 60, 'min': 60, 'h': 3600, 'd': 86400 };
var UINT128_MAX = '340282366920938463463374607431768211455';

/* A whole positive quantity with an optional unit; a fraction only where the result is whole. */
function quantity(value, metric) {
	var m = /^(\d{1,30})(?:\.(\d{1,30}))? ?([A-Za-z]*)$/.exec(value);
	var units = metric === 'bytes' ? BYTE_UNITS : SECOND_UNITS;
	if (!m || !Object.prototype.hasOwnProperty.call(units, m[3]))
		return null;
	var fraction = m[2] || '';
	var scaled = BigInt(m[1] + fraction) * BigInt(units[m[3]]);
	var divisor = BigInt('1' + '0'.repeat(fraction.length));
	if (scaled % divisor !== BigInt(0) || scaled === BigInt(0))
		return null;
	return scaled / divisor;
}

/* "1 step = 15 min for 0.25 USDC · 1 to 96 steps: 15 min to 24 h for 0.25 to 24 USDC", from the editor's values. */
function planPreview(section, section_id) {
	var values = planValues(section, section_id, {});
	var pps = section.formvalue(section_id, 'price_per_step');
	var decimals = section.formvalue(section_id, 'decimals') || '6';
	var currency = section.formvalue(section_id, 'currency') || 'USDC';
	if (values.step_size == null || values.min_steps == null || values.max_steps == null || !/^\d{1,39}$/.test(pps || '') || !/^\d{1,2}$/.test(decimals))
		return _('Fill in step, price and steps to see what customers pay.');
	var price = BigInt(pps);
	var show = function(steps) {
		var size = values.step_size * steps;
		var what = values.metric === 'bytes' ? common.size(size.toString()) : common.duration(Number(size));
		return _('%s for %s').format(what, common.price((price * steps).toString(), Number(decimals), currency));
	};
	return [
		E('div', _('Smallest purchase, %s × step: %s').format(String(values.min_steps), show(values.min_steps))),
		E('div', _('Largest purchase, %s × step: %s').format(String(values.max_steps), show(values.max_steps)))
	];
}

/* Cross-field rules: the table the daemon's loader reads too (sluice/rules.json, src/config/rules.ts). */
var crossRules = [];

function bigOrNull(text) {
	return /^\d{1,80}$/.test(text) ? BigInt(text) : null;
}

/* The parsed values of one plan as the loader sees them (its defaults for empty fields); null where a value is bad. */
function planValues(section, section_id, override) {
	function get(name) {
		var v = Object.prototype.hasOwnProperty.call(override, name) ? override[name] : section.formvalue(section_id, name);
		return v == null ? '' : String(v);
	}
	var metric = get('metric') || 'seconds';
	var min = get('min_steps') === '' ? BigInt(1) : bigOrNull(get('min_steps'));
	var max = get('max_steps') === '' ? (min !== null && min > BigInt(100) ? min : BigInt(100)) : bigOrNull(get('max_steps'));
	return {
		metric: metric,
		step_size: get('step_size') === '' ? (metric === 'bytes' ? BigInt(1048576) : BigInt(60)) : quantity(get('step_size'), metric),
		min_steps: min,
		max_steps: max,
		asset: get('asset')
	};
}

/* A section's Enabled flag as currently in the form; the plan editor is a modal with its own map, whose parent is
 * the page's map; without either, the value loaded from UCI. */
function enabledInForm(map, name) {
	var found = map.lookupOption('enabled', name) || (map.parent && map.parent.lookupOption ? map.parent.lookupOption('enabled', name) : null);
	var v = found ? found[0].formvalue(found[1]) : uci.get('sluice', name, 'enabled');
	return ['1', 'yes', 'on', 'true', 'enabled'].indexOf(String(v)) >= 0;
}

/* The options a rule reads: each of them refuses a value that breaks it, not only the option the loader reports it on
 * (LuCI writes every valid field of an editor on Save; a rule hung on one field let the others through). */
function ruleUses(r) {
	return r.kind === 'at_least' ? [ r.option, r.other ] : r.kind === 'product_at_most' ? r.factors : [ r.option ];
}

/* The reason the first rule involving section.option broken by these values gives, or null. On a field other than the
 * one the loader names, the reason says which option it is about. */
function crossRuleViolation(sectionType, option, values, context) {
	for (var i = 0; i < crossRules.length; i++) {
		var reason = ruleReason(crossRules[i], sectionType, option, values, context);
		if (reason !== null)
			return crossRules[i].option === option ? reason : '%s: %s'.format(crossRules[i].option, reason);
	}
	return null;
}

function ruleReason(r, sectionType, option, values, context) {
	if (r.section !== sectionType || ruleUses(r).indexOf(option) < 0)
		return null;
	if (r.kind === 'at_least') {
		if (values[r.option] != null && values[r.other] != null && values[r.option] < values[r.other])
			return _(r.reason).replace('%s', String(values[r.other]));
	}
	else if (r.kind === 'product_at_most') {
		var product = BigInt(1), known = true;
		r.factors.forEach(function(f) { if (values[f] == null) known = false; else product *= values[f]; });
		if (known && product > BigInt(r.limit))
			return _(r.reason).replace('%s', values.metric);
	}
	else if (r.kind === 'required_while') {
		if (context[r['while']] && (values[r.option] == null || values[r.option] === ''))
			return _(r.reason);
	}
	return null;
}

/* The sections whose Enabled flag a rule's `while` names (escrow.enabled), as they are in the form now. */
function paymentContext(map) {
	var context = {};
	crossRules.forEach(function(r) {
		if (r.kind === 'required_while')
			context[r['while']] = enabledInForm(map, r['while'].split('.')[0]);
	});
	return context;
}

/*
 * Rules that tie a plan to another section (a plan's asset while escrow is on), over every saved plan: the plan editor
 * checks them when a plan is edited, but switching escrow on is done outside it, and the daemon would then leave
 * such a plan out of sale. "pricing[id].option: reason", as the daemon words it.
 */
function planRuleProblems(map, onlyWhile) {
	var context = paymentContext(map), problems = [];
	uci.sections('sluice', 'pricing').forEach(function(plan) {
		crossRules.forEach(function(r) {
			if (r.section !== 'pricing' || r.kind !== 'required_while' || !context[r['while']] || (onlyWhile && r['while'] !== onlyWhile))
				return;
			var v = plan[r.option];
			if (v == null || v === '')
				problems.push('pricing[%s].%s: %s'.format(plan['.name'], r.option, _(r.reason)));
		});
	});
	return problems;
}

/* A save of the page that would leave a plan out is refused before anything is written, with the daemon's reason. */
function refuseOrphanedPlans(m) {
	var parse = m.parse;
	m.parse = function() {
		var problems = planRuleProblems(this);
		if (problems.length)
			return Promise.reject(new TypeError(_('Not saved: sluice would leave these plans out of sale:') + '\n' + problems.join('\n')));
		return parse.apply(this, arguments);
	};
}

/* A plan option's validator: the cross-field rules on it, evaluated over the plan's current form values. */
function validatePlanRules(option) {
	return function(section_id, value) {
		var values = planValues(this.section, section_id, (function() { var o = {}; o[option] = value; return o; })());
		var reason = crossRuleViolation('pricing', option, values, paymentContext(this.section.map));
		return reason === null ? true : reason;
	};
}

function validateUrl(schemes, required) {
	return function(section_id, value) {
		if (value === '' || value == null)
			return required ? _('Required') : true;
		try {
			var u = new URL(value);
			if (schemes.indexOf(u.protocol) >= 0 && u.hostname !== '' && !/\s/.test(value))
				return true;
		}
		catch (e) {}
		return _('Expecting a URL starting with %s').format(schemes.map(function(s) { return s + '//'; }).join(' ' + _('or') + ' '));
	};
}

function validateBytes(min, max) {
	return function(section_id, value) {
		if (value === '')
			return true;
		var n = quantity(value, 'bytes');
		return (n !== null && n >= BigInt(min) && n <= BigInt(max))
			? true : _('Expecting %s to %s bytes (units like KiB, MiB allowed)').format(min, max);
	};
}

/* A plan's speed tier as src/portal/rates.ts reads it: decimal bits per second with a tc/MikroTik unit, 8kbit to 10gbit. */
var RATE_UNITS = { '': 1, 'bit': 1, 'bps': 1, 'k': 1e3, 'kbit': 1e3, 'kbps': 1e3, 'm': 1e6, 'mbit': 1e6, 'mbps': 1e6,
	'g': 1e9, 'gbit': 1e9, 'gbps': 1e9 };

function validateRate(section_id, value) {
	if (value === '' || value == null)
		return true;
	var m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
	var unit = m ? RATE_UNITS[m[2].toLowerCase()] : undefined;
	var bps = unit === undefined ? NaN : Math.round(Number(m[1]) * unit);
	return (isFinite(bps) && bps >= 8000 && bps <= 1e10) ? true : _('Expecting a rate from 8kbit to 10gbit, e.g. 2mbit or 512kbit');
}

/* pricing.display_name as the loader reads it: 1 to 64 characters of text, no control characters. */
function validateDisplayName(section_id, value) {
	if (value === '' || value == null)
		return true;
	return (value.trim() !== '' && Array.from(value).length <= 64 && !/[\u0000-\u001f\u007f-\u009f]/.test(value))
		? true : _('1 to 64 characters of text, without control characters');
}

/* http.portal_url / venue_url: a page a phone opens, http or https, at most 512 characters (src/config/http.ts). */
function validatePageUrl(section_id, value) {
	if (value != null && value.length > 512)
		return _('At most 512 characters');
	return validateUrl(['http:', 'https:'], false).call(this, section_id, value);
}

var NETWORK_HELP = _('eip155:&lt;chain id&gt;, e.g. eip155:8453 = Base, eip155:84532 = Base Sepolia; x402 v1 names such as base are accepted.');

/* The loader's x402 network names (src/x402/networks.ts): eip155:<chain id> or an x402 v1 name. */
var V1_NETWORKS = [ 'base', 'base-sepolia', 'ethereum', 'sepolia', 'polygon', 'polygon-amoy', 'avalanche', 'avalanche-fuji',
	'optimism', 'optimism-sepolia', 'arbitrum', 'arbitrum-sepolia' ];

function validateNetwork(required) {
	return function(section_id, value) {
		if (value === '' || value == null)
			return required ? _('Required') : true;
		var m = /^eip155:([1-9][0-9]{0,15})$/.exec(value);
		return ((m && Number(m[1]) <= Number.MAX_SAFE_INTEGER) || V1_NETWORKS.indexOf(value) >= 0)
			? true : _('Expecting eip155: and a chain id, or a name such as base');
	};
}

/* 0.0.0.0 or :: in any spelling the socket layer takes for it (0, 0x0, ::0, ::ffff:0.0.0.0): as src/config/http.ts,
 * through the URL parser, which writes each one the way inet_aton and inet_pton read it. */
function unspecifiedHost(host) {
	try {
		var h = new URL('http://' + (host.indexOf(':') >= 0 ? '[' + host + ']' : host) + '/').hostname;
		return h === '0.0.0.0' || h === '[::]' || h === '[::ffff:0:0]';
	}
	catch (e) {
		return false;
	}
}

var HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
var IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/* src/config/values.ts isHost: a host name, an IPv4 or an IPv6 address. */
function isHost(text) {
	if (IPV4.test(text) || HOSTNAME.test(text))
		return true;
	if (text.indexOf(':') < 0 || !/^[0-9A-Fa-f:.]+$/.test(text))
		return false;
	try {
		return new URL('http://[' + text + ']/').hostname.length > 2;
	}
	catch (e) {
		return false;
	}
}

/* http.listen as src/config/http.ts reads it: address:port, the LAN address, never 0.0.0.0 or ::. */
function validateListen(section_id, value) {
	if (value === '' || value == null)
		return true;
	var m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):([0-9]{1,5})$/.exec(value);
	var port = m ? Number(m[2]) : 0, host = m ? m[1].replace(/^\[|\]$/g, '') : '';
	if (!m || port < 1 || port > 65535 || !isHost(host))
		return _('Expecting address:port, e.g. 192.168.1.1:2122');
	if (unspecifiedHost(host))
		return _('Expecting the LAN address: 0.0.0.0 and :: listen on every interface, the WAN too');
	return true;
}

function validateAddress(section_id, value) {
	return (value === '' || /^0x[0-9a-fA-F]{40}$/.test(value)) ? true : _('Expecting an address: 0x and 40 hex digits');
}

function validateSeconds(min, max) {
	return function(section_id, value) {
		if (value === '')
			return true;
		var n = Number(value);
		return (/^\d{1,9}(\.\d{1,9})?$/.test(value) && n >= min && n <= max)
			? true : _('Expecting seconds from %s to %s').format(min, max);
	};
}

/* Shown only while the section is enabled; kept in the file while disabled, so nothing is lost by switching off. */
/* As LuCI's form.js asks rpcd whether the session may write a config. */
var callSessionAccess = rpc.declare({ object: 'session', method: 'access', params: [ 'scope', 'object', 'function' ], expect: { access: false } });

/* Whether this session may read /etc/config/sluice_secrets: only luci-app-sluice's write role (the ACL). */
var secretsReadable = false;

/*
 * A secret lives in /etc/config/sluice_secrets, not in /etc/config/sluice (docs/configuration.md, "Secrets"): a
 * read-only user cannot read that file, and even the admin's field never shows the stored value. Empty keeps what
 * is stored; the "Remove" box beside it deletes it. Without access to the file the field says so and writes nothing.
 */
function secretOption(s, name, title, description) {
	var o = s.option(form.Value, name, title, description);
	o.uciconfig = 'sluice_secrets';
	o.password = true;
	o.stored = function(section_id) {
		var v = secretsReadable ? uci.get('sluice_secrets', section_id, name) : null;
		return v != null && v !== '';
	};
	o.cfgvalue = function() { return ''; };
	o.renderWidget = function(section_id) {
		this.placeholder = !secretsReadable ? _('Hidden: only the admin role may set it')
			: this.stored(section_id) ? _('Set (not shown): type a new one to replace it, leave empty to keep it') : _('Not set');
		return form.Value.prototype.renderWidget.apply(this, arguments);
	};
	o.write = function(section_id, value) {
		if (!secretsReadable)
			return;
		if (uci.get('sluice_secrets', section_id) == null)
			uci.add('sluice_secrets', this.section.sectiontype || section_id, section_id);
		uci.set('sluice_secrets', section_id, name, value);
	};
	/* empty field: keep the stored secret (it was never shown, so empty is not "deleted") */
	o.remove = function() {};
	if (!secretsReadable)
		o.readonly = true;

	var r = s.option(form.Flag, '_remove_' + name, _('Remove %s').format(title), _('Deletes the stored value on Save.'));
	r.uciconfig = 'sluice_secrets';
	r.cfgvalue = function() { return '0'; };
	r.write = function(section_id, value) {
		if (secretsReadable && value === '1' && uci.get('sluice_secrets', section_id) != null)
			uci.unset('sluice_secrets', section_id, name);
	};
	r.remove = function() {};
	if (!secretsReadable)
		r.readonly = true;
	return o;
}

/* Empty in a secret's field keeps the stored secret: as valid as the stored one. */
function keepsStored(o, section_id, value) {
	return (value == null || value === '') && o.stored(section_id);
}

function upstream(o) {
	o.depends('enabled', '1');
	o.retain = true;
	return o;
}

function validateRequired(section_id, value) {
	return (value !== '' && value != null) ? true : _('Required');
}

function validateAbsolutePath(section_id, value) {
	return (value === '' || value.charAt(0) === '/') ? true : _('Expecting an absolute path');
}

/* A DynamicList's validator sees the empty "add" field beside the items (LuCI's ui.DynamicList), so "required"
 * means: no item yet and nothing typed. */
function validateListRequired(section_id, value) {
	if (value !== '' && value != null)
		return true;
	var items = this.formvalue(section_id);
	items = Array.isArray(items) ? items : (items != null && items !== '' ? [ items ] : []);
	return items.filter(function(v) { return v !== ''; }).length ? true : _('Required');
}

/* Two paths that go together (a client certificate and its key): both or neither, as the loader wants. */
function validatePathPair(other) {
	return function(section_id, value) {
		var own = validateAbsolutePath(section_id, value || '');
		if (own !== true)
			return own;
		var theirs = this.section.formvalue(section_id, other) || '';
		return ((value || '') === '') === (theirs === '') ? true : _('A client certificate needs both the certificate and the key file');
	};
}

/* An optional upstream section with its Enabled flag; the options added to it use upstream(). */
function upstreamSection(m, name, title, description) {
	var s = m.section(form.NamedSection, name, name, title, description);
	s.addremove = true;
	var o = s.option(form.Flag, 'enabled', _('Enabled'));
	o.rmempty = false;
	/* switching on a method the plans are not ready for: the daemon's reason, at the switch */
	o.validate = function(section_id, value) {
		if (value !== '1')
			return true;
		var problems = planRuleProblems(this.map, name + '.enabled');
		return problems.length ? problems.join('; ') : true;
	};
	return s;
}

/* One UCI section's options as uci.get gives them (pending changes applied), copied: uci.get hands out its own object. */
function sectionSnapshot(data, config, sid) {
	var s = data.get(config, sid), out = {};
	if (s == null)
		return null;
	Object.keys(s).forEach(function(k) {
		if (k.charAt(0) !== '.')
			out[k] = Array.isArray(s[k]) ? s[k].slice() : s[k];
	});
	return out;
}

/* Puts a section's options back as snapshotted: what an abandoned editor wrote is undone before any Save & Apply. */
function restoreSection(data, config, sid, before) {
	var now = sectionSnapshot(data, config, sid);
	if (now == null || before == null)
		return;
	Object.keys(now).forEach(function(k) {
		if (!Object.prototype.hasOwnProperty.call(before, k))
			data.unset(config, sid, k);
	});
	Object.keys(before).forEach(function(k) {
		if (JSON.stringify(now[k]) !== JSON.stringify(before[k]))
			data.set(config, sid, k, before[k]);
	});
}

/* Titles of the options of a form map whose current value is refused (each field validated afresh: a field's verdict
 * is otherwise from its own last edit, before another field it depends on changed). */
function refusedOptions(map) {
	var refused = [];
	(map.children || []).forEach(function(section) {
		section.cfgsections().forEach(function(sid) {
			(section.children || []).forEach(function(o) {
				var field = typeof o.getUIElement === 'function' ? o.getUIElement(sid) : null;
				if (field && typeof field.triggerValidation === 'function')
					field.triggerValidation();
				if (typeof o.isActive === 'function' && !o.isActive(sid))
					return;
				if (typeof o.isValid === 'function' && !o.isValid(sid))
					refused.push(o.title || o.option);
			});
		});
	});
	return refused;
}

/*
 * The plan editor saves all or nothing. LuCI's Map.parse writes every valid field and then fails on the refused one,
 * so a refused edit left its valid fields (a 1 TiB step) in the page's changes; Dismiss then closed the editor and the
 * next Save & Apply wrote them. Now a refused field stops the editor's save before anything is written, and Dismiss
 * puts back the plan as it was when the editor opened.
 */
function guardPlanEditor(s) {
	s.addModalOptions = function(modalSection) {
		var modalMap = modalSection.map, parse = modalMap.parse;
		modalMap.parse = function() {
			var refused = refusedOptions(this);
			if (refused.length)
				return Promise.reject(new TypeError(_('Nothing saved: %s refused').format(refused.join(', '))));
			return parse.apply(this, arguments);
		};
	};
	var open = s.renderMoreOptionsModal, cancel = s.handleModalCancel;
	s.renderMoreOptionsModal = function(section_id) {
		this.editing = { sid: section_id, before: sectionSnapshot(this.map.data, this.map.config, section_id) };
		return open.apply(this, arguments);
	};
	s.handleModalCancel = function(modalMap, ev, isSaving) {
		if (!isSaving && this.editing)
			restoreSection(this.map.data, this.map.config, this.editing.sid, this.editing.before);
		this.editing = null;
		return cancel.apply(this, arguments);
	};
}

/*
 * Plans x402 upto cannot offer (src/payments/x402-upto.ts offerFor): without an asset, a data plan without a time
 * limit, or one whose longest purchase could outlast the authorization window less the 600 s to settle. Not a
 * config error (the daemon sells them by its other methods), so a notice and not a refusal. "id: reason" each.
 */
function uptoUnfitPlans(data) {
	if (['1', 'yes', 'on', 'true', 'enabled'].indexOf(String(data.get('sluice', 'upto', 'enabled'))) < 0)
		return [];
	var window = Number(data.get('sluice', 'upto', 'max_timeout_seconds') || 172800);
	var out = [];
	data.sections('sluice', 'pricing').forEach(function(p) {
		var id = p['.name'], metric = p.metric === 'bytes' ? 'bytes' : 'seconds', longest = null;
		if (!p.asset)
			return out.push(_('%s: no asset').format(id));
		if (metric === 'bytes') {
			longest = p.time_limit ? quantity(String(p.time_limit), 'seconds') : null;
			if (longest === null)
				return out.push(_('%s: a data plan needs Valid for').format(id));
		}
		else {
			var step = p.step_size ? quantity(String(p.step_size), 'seconds') : BigInt(60);
			var min = /^\d{1,15}$/.test(p.min_steps || '') ? BigInt(p.min_steps) : BigInt(1);
			var max = /^\d{1,15}$/.test(p.max_steps || '') ? BigInt(p.max_steps) : (min > BigInt(100) ? min : BigInt(100));
			longest = step === null ? null : step * max;
		}
		if (longest !== null && longest + BigInt(600) > BigInt(window))
			out.push(_('%s: a session can run past the authorization window (%s s, less 600 s to settle)').format(id, String(window)));
	});
	return out;
}

function escapeHtml(text) {
	return String(text).replace(/[&<>"']/g, function(c) { return '&#' + c.charCodeAt(0) + ';'; });
}

/* The grid cell of an option left empty shows what the daemon uses then (its default), not LuCI's "none". */
function showDefault(o, fallback) {
	o.textvalue = function(section_id) {
		var v = this.cfgvalue(section_id);
		return escapeHtml((v == null || v === '') ? (typeof fallback === 'function' ? fallback(section_id) : fallback) : v);
	};
}

return view.extend({
	load: function() {
		return Promise.all([
			uci.load('sluice'),
			request.get(L.resource('sluice/rules.json')).then(function(res) { return res.json(); }),
			common.stats().catch(function() { return null; }),
			L.resolveDefault(callSessionAccess('uci', 'sluice_secrets', 'read'), false)
		]);
	},

	render: function(data) {
		var m, s, o;

		crossRules = (data && data[1] && data[1].rules) || [];
		secretsReadable = !!(data && data[3] === true);

		m = new form.Map('sluice', _('Sluice'),
			_('Pay-per-use WiFi: customers buy time or data; sluice opens the captive portal for their device and closes it when the purchase is used up. Save & Apply reloads the daemon, and restarts it when an option that applies only at start changed.'));

		refuseOrphanedPlans(m);
		/* loaded and saved with sluice: Save & Apply commits both and rpcd announces both to procd */
		if (secretsReadable)
			m.chain('sluice_secrets');

		var stats = data && data[2];
		if (stats && Array.isArray(stats.restart_required) && stats.restart_required.length)
			ui.addNotification(null, E('p', _('These settings are saved but not in use until sluice restarts: %s').format(stats.restart_required.join(', '))), 'warning');
		if (stats && Array.isArray(stats.config_problems) && stats.config_problems.length)
			ui.addNotification(null, [
				E('p', _('sluice runs without these settings of /etc/config/sluice:')),
				E('ul', {}, stats.config_problems.map(function(p) { return E('li', '%s: %s'.format(p.path, p.reason)); }))
			], 'warning');

		var unfit = uptoUnfitPlans(uci);
		if (unfit.length)
			ui.addNotification(null, [
				E('p', _('x402 upto is on but does not offer these plans (customers pay for them by the other methods):')),
				E('ul', {}, unfit.map(function(t) { return E('li', t); }))
			], 'warning');

		/* main */
		s = m.section(form.NamedSection, 'main', 'sluice', _('Service'));
		s.addremove = false;
		s.tab('general', _('General'));
		s.tab('advanced', _('Advanced'));

		o = s.taboption('general', form.Flag, 'enabled', _('Enabled'));
		o.default = '1';
		o.rmempty = false;

		o = s.taboption('general', form.ListValue, 'portal', _('Captive portal'),
			_('Auto detects openNDS or nodogsplash from the output of <code>ndsctl json</code>. <code>sluice</code>: sluice is the gate itself, no portal daemon (its own nftables table; the pay page on <code>192.168.1.1:2122</code> unless the LAN endpoint says otherwise). Needs a restart.'));
		o.value('auto', _('Auto'));
		o.value('opennds', 'openNDS');
		o.value('nodogsplash', 'nodogsplash');
		o.value('sluice', 'sluice');
		o.default = 'auto';

		o = s.taboption('general', form.Value, 'ndsctl', _('ndsctl command'),
			_('Path of the portal\'s control program, optionally followed by arguments, split like a shell word list (quotes respected, nothing expanded).'));
		o.placeholder = '/usr/bin/ndsctl';
		o.validate = function(section_id, value) {
			return (value === '' || /\S/.test(value)) ? true : _('Expecting a command');
		};

		o = s.taboption('general', form.Value, 'ndsctl_socket', _('Portal control socket'),
			_('Speak the portal\'s control socket directly instead of running ndsctl for every call: <code>auto</code> finds openNDS\'s or nodogsplash\'s ndsctl.sock (only with the stock ndsctl command), <code>off</code> always runs the command, or an absolute path. The command stays the fallback while the socket is absent. Needs a restart.'));
		o.placeholder = 'auto';
		o.validate = function(section_id, value) {
			return (value === '' || value === 'auto' || value === 'off' || /^\//.test(value)) ? true : _('Expecting auto, off or an absolute path');
		};

		o = s.taboption('general', form.Value, 'router_id', _('Router ID'),
			_('Identifies this router upstream (RADIUS NAS-Identifier, MQTT topic). 1 to 64 characters from A-Z a-z 0-9 . _ -; empty = the hostname.'));
		o.datatype = 'and(minlength(1),maxlength(64))';
		o.validate = function(section_id, value) {
			return (value === '' || /^[A-Za-z0-9._-]{1,64}$/.test(value)) ? true : _('Only A-Z a-z 0-9 . _ - allowed');
		};

		o = s.taboption('general', form.ListValue, 'log_level', _('Log level'));
		['debug', 'info', 'warn', 'error'].forEach(function(l) { o.value(l); });
		o.default = 'info';

		o = s.taboption('general', form.DynamicList, 'walled_garden', _('Walled garden'),
			_('Hosts a customer reaches before paying, one name a line (wallet.example.com): no wildcard, URL, port or address. sluice resolves them as their DNS answers expire, and the router\'s dnsmasq adds what it answers customers for them or their subdomains (restarted when the list changes); sluice adds the hosts the enabled payment methods need by itself (the Cashu mints, an x402 RPC URL you set); the x402 facilitator is never added, the router talks to it. The garden opens the names\' addresses: other sites on a shared address (a CDN) open too; the system log names the addresses each host opened. Private, link-local and loopback addresses, the LAN\'s subnets and the router\'s own addresses are never opened, whoever resolved them (logged as refused). Applies on save.'));
		o.validate = function(section_id, value) {
			var host = (value || '').toLowerCase().replace(/\.$/, '');
			if (host === '')
				return true;
			if (host.indexOf('*') >= 0)
				return _('Wildcards are not supported: list each host');
			var labels = host.split('.');
			var ok = host.length <= 253 && labels.length >= 2 && labels.every(function(l) { return /^(?!-)[a-z0-9-]{1,63}$/.test(l) && l.charAt(l.length - 1) !== '-'; });
			return ok ? true : _('Expecting a host name such as wallet.example.com');
		};

		o = s.taboption('general', form.Value, 'walled_garden_ports', _('Walled garden ports'),
			_('TCP and UDP ports open to the walled garden\'s hosts before paying, separated by spaces.'));
		o.placeholder = '443 80';
		o.validate = function(section_id, value) {
			if (value === '' || value == null)
				return true;
			var ports = value.split(/[\s,]+/).filter(function(p) { return p !== ''; });
			return ports.length >= 1 && ports.length <= 16 && ports.every(function(p) { return /^\d{1,5}$/.test(p) && +p >= 1 && +p <= 65535; })
				? true : _('Expecting 1 to 16 port numbers (1-65535)');
		};

		o = s.taboption('advanced', form.Flag, 'leave_foreign_clients', _('Leave other authenticated clients alone'),
			_('Off (default): clients the portal shows authenticated without a sluice session are deauthenticated on every poll. On: only gates sluice opened are closed (for a free tier run by other means). The portal\'s Trusted list is never touched. Needs a restart.'));
		o.default = '0';

		o = s.taboption('advanced', form.Value, 'state_dir', _('State directory'),
			_('Session journal. Keep it on flash (the default /etc/sluice) so paid sessions survive a reboot.'));
		o.placeholder = '/etc/sluice';
		o.validate = validateAbsolutePath;

		o = s.taboption('advanced', form.Value, 'poll_interval', _('Poll interval'),
			_('Seconds between usage polls of the portal, 0.2 to 3600 (fractions allowed).'));
		o.placeholder = '2';
		o.validate = validateSeconds(0.2, 3600);

		o = s.taboption('advanced', form.Value, 'checkpoint_interval', _('Checkpoint interval'),
			_('Seconds between writes of usage to flash, 5 to 86400. Purchases are written at once; after a power cut at most this much usage is lost on the router. MQTT usage reports and RADIUS Interim-Updates carry only what is on flash, so their usage advances at this pace too.'));
		o.placeholder = '300';
		o.validate = validateSeconds(5, 86400);

		o = s.taboption('advanced', form.Value, 'ndsctl_timeout', _('ndsctl timeout'),
			_('Seconds one ndsctl call may take, 0.5 to 300.'));
		o.placeholder = '5';
		o.validate = validateSeconds(0.5, 300);

		o = s.taboption('advanced', form.Value, 'workers', _('Worker threads'),
			_('Threads parsing portal snapshots, 1 to 16.'));
		o.placeholder = '1';
		o.datatype = 'and(uinteger,range(1,16))';

		o = s.taboption('advanced', form.Value, 'ubus_socket', _('ubus socket'));
		o.placeholder = '/var/run/ubus/ubus.sock';
		o.validate = validateAbsolutePath;

		/* pricing plans */
		s = m.section(form.GridSection, 'pricing', _('Pricing plans'),
			_('The plan ID is what customers and the portal ask for. The first plan is the default: drag to reorder. Prices are whole numbers in the smallest unit of the asset (with 6 decimals, 250000 = 0.25).'));
		s.anonymous = false;
		s.addremove = true;
		s.sortable = true;
		s.nodescriptions = true;
		s.addbtntitle = _('Add plan…');
		guardPlanEditor(s);

		o = s.option(form.ListValue, 'metric', _('Sells'));
		o.value('seconds', _('Time'));
		o.value('bytes', _('Data'));
		o.default = 'seconds';
		o.textvalue = function(section_id) {
			return this.cfgvalue(section_id) === 'bytes' ? _('Data') : _('Time');
		};

		o = s.option(form.Value, 'step_size', _('Step'),
			_('Time: seconds, or with a unit s, m (or min), h, d, e.g. 15m. Data: bytes, or with a unit k M G T (powers of 1000) or Ki Mi Gi Ti (powers of 1024), B optional, e.g. 100MiB. Empty = 60 s or 1 MiB.'));
		/* the placeholder is the daemon's default for the plan's metric (an empty field means it), not an example */
		var stepDefault = function(section_id) { return uci.get('sluice', section_id, 'metric') === 'bytes' ? '1MiB' : '60'; };
		o.placeholder = '60';
		showDefault(o, stepDefault);
		o.renderWidget = function(section_id) {
			this.placeholder = stepDefault(section_id);
			return form.Value.prototype.renderWidget.apply(this, arguments);
		};
		o.validate = function(section_id, value) {
			if (value === '')
				return validatePlanRules('step_size').call(this, section_id, value);
			var metric = this.section.formvalue(section_id, 'metric') || 'seconds';
			if (quantity(value, metric) === null)
				return metric === 'bytes' ? _('Expecting bytes, e.g. 104857600 or 100MiB') : _('Expecting seconds, e.g. 900 or 15m');
			return validatePlanRules('step_size').call(this, section_id, value);
		};

		o = s.option(form.Value, 'price_per_step', _('Price per step'),
			_('A whole number in the smallest unit of the asset: with 6 decimals, 250000 is 0.25.'));
		o.rmempty = false;
		/* The grid shows the price as people read it: amount ÷ 10^decimals and the currency. */
		o.textvalue = function(section_id) {
			var v = this.cfgvalue(section_id);
			var decimals = uci.get('sluice', section_id, 'decimals') || '6';
			return v == null ? '-' : common.price(v, decimals, uci.get('sluice', section_id, 'currency') || 'USDC');
		};
		o.validate = function(section_id, value) {
			if (!/^\d{1,39}$/.test(value) || BigInt(value) > BigInt(UINT128_MAX))
				return _('Expecting a non-negative whole number in the smallest unit of the asset');
			return true;
		};

		o = s.option(form.Value, 'currency', _('Currency'));
		o.placeholder = 'USDC';
		showDefault(o, 'USDC');
		o.validate = function(section_id, value) {
			return (value === '' || /^[A-Za-z0-9._-]{1,16}$/.test(value)) ? true : _('1 to 16 characters from A-Z a-z 0-9 . _ -');
		};

		o = s.option(form.Value, 'decimals', _('Decimals'));
		o.placeholder = '6';
		o.datatype = 'and(uinteger,range(0,36))';
		showDefault(o, '6');

		o = s.option(form.Value, 'asset', _('Asset'),
			_('Token contract address the customer pays with: required while x402 escrow is enabled; without it x402 does not offer this plan (vouchers still sell it).'));
		o.modalonly = true;
		o.validate = function(section_id, value) {
			var own = validateAddress(section_id, value);
			return own !== true ? own : validatePlanRules('asset').call(this, section_id, value);
		};

		o = s.option(form.Value, 'min_steps', _('Minimum steps'));
		o.placeholder = '1';
		o.datatype = 'and(uinteger,min(1))';
		o.validate = validatePlanRules('min_steps');
		showDefault(o, '1');

		/* Live preview in the plan editor, from the values being typed (not yet saved). */
		o = s.option(form.DummyValue, '_preview', _('Customers pay'));
		o.modalonly = true;
		o.rawhtml = true;
		o.cfgvalue = function() { return ''; };
		o.renderWidget = function(section_id) {
			var section = this.section;
			var node = E('div', { 'class': 'cbi-value-description', 'id': 'sluice_quote_preview' });
			var update = function(ev) {
				if (ev && !node.isConnected) {
					/* the editor was closed: stop listening */
					document.removeEventListener('input', update, true);
					document.removeEventListener('change', update, true);
					return;
				}
				dom.content(node, planPreview(section, section_id));
			};
			/* after the editor's other fields exist, so their values can be read */
			window.setTimeout(update, 0);
			document.addEventListener('input', update, true);
			document.addEventListener('change', update, true);
			return node;
		};

		o = s.option(form.Value, 'max_steps', _('Maximum steps'),
			_('At least the minimum; step × maximum must stay below 2^53.'));
		o.placeholder = '100';
		o.datatype = 'and(uinteger,min(1))';
		o.validate = validatePlanRules('max_steps');
		showDefault(o, function(section_id) {
			var min = uci.get('sluice', section_id, 'min_steps');
			return /^\d+$/.test(min || '') && Number(min) > 100 ? min : '100';
		});

		o = s.option(form.Value, 'time_limit', _('Valid for'),
			_('Data plans only: a session also ends this long after the sale, whichever comes first (24h: a day pass). A top-up adds data and keeps the deadline. x402 upto offers a data plan only with it. Empty = no time limit.'));
		o.modalonly = true;
		/* no placeholder: empty means none, and a greyed example would read as a default */
		o.depends('metric', 'bytes');
		o.validate = function(section_id, value) {
			if (value === '')
				return true;
			var q = quantity(value, 'seconds');
			return (q !== null && q > BigInt(0) && q <= BigInt(3653 * 86400)) ? true : _('Expecting seconds, e.g. 86400 or 24h (at most 10 years)');
		};

		o = s.option(form.Value, 'trial_every', _('Free trial every'),
			_('A free trial: price 0, its allowance (minimum steps) once per device per this interval, e.g. 1d. Known by the device\'s MAC and by a token its pay page keeps: a new MAC alone gets no second trial. Empty = not a trial.'));
		o.modalonly = true;
		/* no placeholder: empty means none, and a greyed example would read as a default */
		o.validate = function(section_id, value) {
			if (value === '')
				return true;
			var q = quantity(value, 'seconds');
			if (q === null || q <= BigInt(0) || q > BigInt(3653 * 86400))
				return _('Expecting seconds, e.g. 86400 or 1d (at most 10 years)');
			var pps = this.section.formvalue(section_id, 'price_per_step');
			return (pps === '0') ? true : _('A free trial has price per step 0');
		};

		o = s.option(form.Value, 'trial_limit', _('Free trials per interval'),
			_('At most this many free trials of this plan per "Free trial every" on this router, all devices together: what stops a device that changes its MAC and clears its browser for each trial. 0 = no limit. Empty = 500.'));
		o.modalonly = true;
		o.datatype = 'range(0,10000)';
		o.depends({ trial_every: '', '!reverse': true });
		/* no placeholder: the help says the default */

		o = s.option(form.Value, 'display_name', _('Name for customers'),
			_('The plan\'s title on the pay page, 1 to 64 characters. Empty = the plan ID, capitalized.'));
		o.modalonly = true;
		o.validate = validateDisplayName;

		o = s.option(form.Value, 'devices', _('Devices per purchase'),
			_('Devices sharing one purchase and its allotment, 1 to 16: the buyer\'s pay page shows a code another device enters. Empty = 1.'));
		o.modalonly = true;
		o.placeholder = '1';
		o.datatype = 'and(uinteger,range(1,16))';

		o = s.option(form.Value, 'rate_down', _('Download speed'),
			_('Speed tier: each device of this plan is limited to this download rate, e.g. 2mbit or 512kbit (bits per second, 8kbit to 10gbit). Empty = not limited.'));
		o.modalonly = true;
		o.validate = validateRate;

		o = s.option(form.Value, 'rate_up', _('Upload speed'),
			_('The same for uploads. Empty = not limited.'));
		o.modalonly = true;
		o.validate = validateRate;

		/* limits */
		s = m.section(form.NamedSection, 'limits', 'limits', _('Limits'));
		s.addremove = true;

		o = s.option(form.Value, 'max_devices_per_user', _('Devices per user'),
			_('When a user logs in on one device too many, their oldest session ends. 0 = unlimited.'));
		o.placeholder = '0';
		o.datatype = 'and(uinteger,max(1000000))';

		o = s.option(form.Value, 'max_sessions', _('Active sessions'),
			_('Upper bound on concurrently active sessions. 0 = unlimited.'));
		o.placeholder = '0';
		o.datatype = 'and(uinteger,max(100000000))';

		/* upstreams: each section is optional; its fields are checked only while it is enabled */
		s = upstreamSection(m, 'radius', _('RADIUS'),
			_('Accounting (Start, Interim-Update, Stop) to a RADIUS server, and Disconnect/CoA requests from it.'));
		o = s.option(form.DynamicList, 'server', _('Servers'),
			_('The first is primary; the others are tried in order when it does not answer.'));
		o.datatype = 'host';
		upstream(o);
		o.validate = validateListRequired;
		o = secretOption(s, 'secret', _('Shared secret'));
		upstream(o);
		o.validate = function(section_id, value) { return keepsStored(this, section_id, value) || validateRequired(section_id, value); };
		o = s.option(form.Value, 'auth_port', _('Authentication port'));
		o.datatype = 'and(port,min(1))';
		o.placeholder = '1812';
		upstream(o);
		o = s.option(form.Value, 'acct_port', _('Accounting port'));
		o.datatype = 'and(port,min(1))';
		o.placeholder = '1813';
		upstream(o);
		o = s.option(form.Value, 'nas_identifier', _('NAS-Identifier'), _('Empty = the router ID.'));
		o.datatype = 'maxlength(253)';
		upstream(o);
		o = s.option(form.Value, 'interim_interval', _('Interim interval'),
			_('Seconds, 10 to 86400. An Interim-Update carries only the usage on flash: its octets advance once per checkpoint interval (Advanced), and Interim-Updates between repeat them.'));
		o.placeholder = '300';
		o.validate = validateSeconds(10, 86400);
		upstream(o);
		o = s.option(form.Value, 'coa_port', _('Disconnect/CoA port'),
			_('UDP port sluice listens on for Disconnect/CoA requests (RFC 5176). 0 = do not listen.'));
		o.datatype = 'port';
		o.placeholder = '3799';
		upstream(o);
		o = s.option(form.Value, 'coa_listen', _('Disconnect/CoA address'), _('Address the listener binds. Empty = all.'));
		o.datatype = 'ipaddr';
		upstream(o);
		o = s.option(form.DynamicList, 'das_client', _('Disconnect/CoA clients'),
			_('Addresses allowed to send Disconnect/CoA. Empty = the servers.'));
		o.datatype = 'ipaddr';
		upstream(o);
		o = secretOption(s, 'das_secret', _('Disconnect/CoA secret'), _('Not set = the shared secret.'));
		upstream(o);
		o = s.option(form.Value, 'nas_ip', _('NAS-IP-Address'), _('Empty = the local address that reaches the first server.'));
		o.datatype = 'ipaddr';
		upstream(o);
		o = s.option(form.Value, 'called_station_id', _('Called-Station-Id'), _('Empty = the NAS-Identifier.'));
		o.datatype = 'maxlength(253)';
		upstream(o);
		o = s.option(form.Value, 'timeout', _('Timeout'), _('Seconds before the first retransmission (doubles per retry), 0.1 to 60. A server measured slower is waited for longer (up to 8×).'));
		o.placeholder = '3';
		o.validate = validateSeconds(0.1, 60);
		upstream(o);
		o = s.option(form.Value, 'retries', _('Retries'), _('Per server, before failing over to the next one.'));
		o.datatype = 'and(uinteger,max(10))';
		o.placeholder = '2';
		upstream(o);
		o = s.option(form.Value, 'max_inflight', _('Requests in flight'));
		o.datatype = 'and(uinteger,range(1,128))';
		o.placeholder = '32';
		upstream(o);
		o = s.option(form.Value, 'backoff_max', _('Longest retry pause'), _('Seconds between attempts while no server answers, 1 to 3600.'));
		o.placeholder = '60';
		o.validate = validateSeconds(1, 3600);
		upstream(o);
		o = s.option(form.Value, 'queue_max', _('Accounting queue'),
			_('Bytes on flash; when full the oldest Interim-Updates are dropped, never a Start or Stop.'));
		o.datatype = 'and(uinteger,range(65536,67108864))';
		o.placeholder = '1048576';
		upstream(o);

		s = upstreamSection(m, 'mqtt', _('MQTT'), _('Session events and usage reports to an MQTT broker.'));
		o = s.option(form.Value, 'url', _('Broker URL'), _('mqtt://, mqtts://, ws:// or wss://'));
		o.placeholder = 'mqtts://broker.example.net:8883';
		o.validate = validateUrl(['mqtt:', 'mqtts:', 'ws:', 'wss:'], true);
		upstream(o);
		o = s.option(form.Value, 'username', _('Username'));
		upstream(o);
		o = secretOption(s, 'password', _('Password'));
		upstream(o);
		o = s.option(form.Value, 'topic_prefix', _('Topic prefix'), _('Every topic sluice publishes starts with this.'));
		o.placeholder = 'sluice';
		o.validate = function(section_id, value) {
			return (value === '' || (!/[+#]/.test(value) && value.charAt(0) !== '/' && value.charAt(value.length - 1) !== '/'))
				? true : _('No + or #, no leading or trailing /');
		};
		upstream(o);
		o = s.option(form.ListValue, 'qos', _('QoS'));
		o.value('0');
		o.value('1');
		o.value('2');
		o.default = '1';
		upstream(o);
		o = s.option(form.Value, 'client_id', _('Client ID'), _('Empty = sluice-&lt;router ID&gt;.'));
		o.validate = function(section_id, value) {
			return (value === '' || /^[\x21-\x7e]{1,128}$/.test(value)) ? true : _('1 to 128 printable ASCII characters, no spaces');
		};
		upstream(o);
		o = s.option(form.ListValue, 'protocol', _('Protocol'), _('Auto: MQTT 5, or 3.1.1 when the broker refuses 5.'));
		o.value('auto', _('Auto'));
		o.value('5', 'MQTT 5');
		o.value('3.1.1', 'MQTT 3.1.1');
		o.default = 'auto';
		upstream(o);
		o = s.option(form.Value, 'keepalive', _('Keepalive'), _('Seconds, 5 to 3600.'));
		o.placeholder = '60';
		o.validate = validateSeconds(5, 3600);
		upstream(o);
		o = s.option(form.Value, 'ca_file', _('CA certificate file'), _('PEM file the broker certificate must chain to (TLS).'));
		o.validate = validateAbsolutePath;
		upstream(o);
		o = s.option(form.Value, 'cert_file', _('Client certificate file'), _('PEM; needs the key file too.'));
		o.validate = validatePathPair('key_file');
		upstream(o);
		o = s.option(form.Value, 'key_file', _('Client key file'), _('PEM; needs the certificate file too.'));
		o.validate = validatePathPair('cert_file');
		upstream(o);
		o = s.option(form.ListValue, 'format', _('Payload format'));
		o.value('msgpack', 'MessagePack');
		o.value('json', 'JSON');
		o.default = 'msgpack';
		upstream(o);
		o = s.option(form.Value, 'max_payload', _('Largest message'), _('Bytes (units like KiB allowed); bigger usage reports are split.'));
		o.placeholder = '64KiB';
		o.validate = validateBytes(1024, 268435456);
		upstream(o);
		o = s.option(form.Value, 'max_inflight', _('Messages in flight'), _('Published but not yet acknowledged, at most.'));
		o.placeholder = '100';
		o.datatype = 'and(uinteger,min(1),max(65535))';
		upstream(o);
		o = s.option(form.Value, 'queue_dir', _('Queue directory'), _('Where messages wait while the broker is unreachable. Empty = &lt;state directory&gt;/mqtt-outbox.'));
		o.validate = validateAbsolutePath;
		upstream(o);
		o = s.option(form.Value, 'queue_max', _('Queue size'), _('Bytes; when full the oldest usage reports are dropped (counted), session events never.'));
		o.placeholder = '1MiB';
		o.validate = validateBytes(65536, 1073741824);
		upstream(o);
		o = s.option(form.Value, 'usage_expiry', _('Usage report expiry'), _('Seconds a usage report stays deliverable (MQTT 5). 0 = forever.'));
		o.placeholder = '3600';
		o.validate = validateSeconds(0, 2592000);
		upstream(o);
		o = s.option(form.Value, 'status_interval', _('Status interval'), _('Seconds between retained status updates.'));
		o.placeholder = '60';
		o.validate = validateSeconds(5, 86400);
		upstream(o);
		o = s.option(form.Flag, 'commands', _('Command channel'), _('Accept signed terminate and grant commands on &lt;prefix&gt;/&lt;router ID&gt;/cmd.'));
		upstream(o);
		o = secretOption(s, 'command_secret', _('Command secret'), _('HMAC-SHA256 key of commands, at least 16 characters.'));
		o.validate = function(section_id, value) {
			var on = this.section.formvalue(section_id, 'commands');
			return (on !== '1' || keepsStored(this, section_id, value) || (value || '').length >= 16) ? true : _('At least 16 characters while commands are on');
		};
		upstream(o);
		o = s.option(form.Value, 'command_window', _('Command window'), _('Seconds a command timestamp may differ from the router clock.'));
		o.placeholder = '300';
		o.validate = validateSeconds(5, 3600);
		upstream(o);

		s = upstreamSection(m, 'escrow', _('x402 escrow'),
			_('Payments held by an escrow facilitator and settled for the usage actually consumed.'));
		o = s.option(form.Value, 'facilitator_url', _('Facilitator URL'));
		o.validate = validateUrl(['http:', 'https:'], true);
		upstream(o);
		o = s.option(form.Value, 'network', _('Network'), NETWORK_HELP);
		o.placeholder = 'eip155:8453';
		o.validate = validateNetwork(false);
		upstream(o);
		o = s.option(form.Value, 'address', _('Escrow contract'), _('Address of the SessionEscrow contract holding the deposits.'));
		o.validate = function(section_id, value) {
			return value === '' ? _('Required') : validateAddress(section_id, value);
		};
		upstream(o);
		o = s.option(form.Value, 'seller', _('Seller address'), _('Address paid for the units consumed.'));
		o.validate = function(section_id, value) {
			return value === '' ? _('Required') : validateAddress(section_id, value);
		};
		upstream(o);
		o = s.option(form.Value, 'credit_steps', _('Credit steps'), _('Steps of usage allowed ahead of the customer\'s latest signed receipt before the gate closes.'));
		o.datatype = 'and(uinteger,max(1000))';
		o.placeholder = '1';
		upstream(o);
		o = s.option(form.Value, 'close_grace', _('Close grace'), _('Seconds a final receipt may still arrive after a session ends before the escrow session is closed.'));
		o.placeholder = '30';
		o.validate = validateSeconds(0, 3600);
		upstream(o);

		s = upstreamSection(m, 'x402', _('x402 payments'),
			_('Customers pay each purchase with a USDC transfer their wallet signs (x402 <code>exact</code>), settled by an x402 facilitator; the pay page below takes them on the LAN. Only plans with an asset are offered.'));
		o = s.option(form.Value, 'pay_to', _('Pay to'), _('The address customers pay (yours).'));
		o.validate = function(section_id, value) {
			return value === '' ? _('Required') : validateAddress(section_id, value);
		};
		upstream(o);
		o = s.option(form.Value, 'facilitator_url', _('Facilitator URL'), _('The x402 facilitator that verifies and settles payments (its /verify, /settle, /supported).'));
		o.placeholder = 'https://facilitator.example.net';
		o.validate = validateUrl(['http:', 'https:'], true);
		upstream(o);
		o = s.option(form.Value, 'network', _('Network'), NETWORK_HELP);
		o.placeholder = 'eip155:8453';
		o.validate = validateNetwork(true);
		upstream(o);
		o = s.option(form.Value, 'rpc_url', _('Chain RPC URL'),
			_('JSON-RPC endpoint of the chain, read only: decides a purchase whose settle went unanswered by looking up the transfer. Empty: the public endpoint of Base or Base Sepolia (other networks have none); none: no lookups, such purchases stay unconfirmed.'));
		o.placeholder = _('public endpoint of the network');
		o.validate = function(section_id, value) {
			return value === 'none' ? true : validateUrl(['http:', 'https:'], false)(section_id, value);
		};
		upstream(o);
		o = s.option(form.Value, 'timeout', _('Facilitator timeout'), _('Seconds one facilitator request may take, 1 to 120.'));
		o.placeholder = '10';
		o.validate = validateSeconds(1, 120);
		upstream(o);
		o = s.option(form.Value, 'max_timeout_seconds', _('Longest authorization'), _('Seconds a signed payment may stay valid (its validBefore from now), 30 to 3600.'));
		o.placeholder = '300';
		o.datatype = 'and(uinteger,range(30,3600))';
		upstream(o);
		o = s.option(form.Value, 'token_name', _('Token name'), _('EIP-712 name of a plan asset sluice does not know (it knows USDC on Base and Base Sepolia). At most 64 characters.'));
		o.validate = function(section_id, value) {
			return (value == null || value.length <= 64) ? true : _('At most 64 characters');
		};
		upstream(o);
		o = s.option(form.Value, 'token_version', _('Token version'), _('EIP-712 version of that asset, 1 to 16 characters.'));
		o.placeholder = '2';
		o.validate = function(section_id, value) {
			return (value === '' || value.length <= 16) ? true : _('1 to 16 characters');
		};
		upstream(o);

		s = upstreamSection(m, 'batch_settlement', _('x402 batch settlement'),
			_('Customers deposit once into their own payment channel (x402 <code>batch-settlement</code>) and sign a voucher per session; sluice charges what the meter counted and the rest goes back. Only plans with an asset are offered.'));
		o = s.option(form.Value, 'facilitator_url', _('Facilitator URL'), _('The facilitator that verifies deposits and vouchers and settles the channels.'));
		o.placeholder = 'https://facilitator.example.net';
		o.validate = validateUrl(['http:', 'https:'], true);
		upstream(o);
		o = s.option(form.Value, 'network', _('Network'), NETWORK_HELP);
		o.placeholder = 'eip155:8453';
		o.validate = validateNetwork(false);
		upstream(o);
		o = s.option(form.Value, 'receiver', _('Receiver'), _('The address settled money goes to (yours).'));
		o.validate = function(section_id, value) {
			return value === '' ? _('Required') : validateAddress(section_id, value);
		};
		upstream(o);
		o = s.option(form.Value, 'receiver_authorizer', _('Receiver authorizer'), _('The facilitator\'s receiverAuthorizer address, as its /supported lists it: it signs the claims and refunds.'));
		o.validate = function(section_id, value) {
			return value === '' ? _('Required') : validateAddress(section_id, value);
		};
		upstream(o);
		o = s.option(form.Value, 'withdraw_delay', _('Withdrawal delay'), _('Seconds a customer\'s timed withdrawal waits, 900 to 2592000; sluice claims well within it.'));
		o.placeholder = '86400';
		o.datatype = 'and(uinteger,range(900,2592000))';
		upstream(o);
		o = s.option(form.ListValue, 'refund', _('Refund'), _('When the unused balance of a channel goes back to the customer.'));
		o.value('at-end', _('When the session ends'));
		o.value('idle', _('After the channel is idle'));
		o.value('on-request', _('Only when the customer asks'));
		o.default = 'at-end';
		upstream(o);
		/* Shown while the section is on whatever the policy: the daemon checks it then too, and a bad value kept hidden
		 * under another policy would switch the whole method off. */
		o = s.option(form.Value, 'refund_idle', _('Idle before refund'), _('With the policy "After the channel is idle": seconds without a session before the channel is refunded, 0 to 2592000.'));
		o.placeholder = '600';
		o.validate = validateSeconds(0, 2592000);
		upstream(o);
		o = s.option(form.Value, 'timeout', _('Facilitator timeout'), _('Seconds one facilitator request may take, 1 to 120.'));
		o.placeholder = '15';
		o.validate = validateSeconds(1, 120);
		upstream(o);
		o = s.option(form.Value, 'token_name', _('Token name'), _('EIP-712 name of a plan asset sluice does not know (it knows USDC on Base and Base Sepolia). At most 64 characters.'));
		o.validate = function(section_id, value) {
			return (value == null || value.length <= 64) ? true : _('At most 64 characters');
		};
		upstream(o);
		o = s.option(form.Value, 'token_version', _('Token version'), _('EIP-712 version of that asset, 1 to 16 characters.'));
		o.placeholder = '2';
		o.validate = function(section_id, value) {
			return (value === '' || value.length <= 16) ? true : _('1 to 16 characters');
		};
		upstream(o);

		s = upstreamSection(m, 'upto', _('x402 upto'),
			_('Customers authorize a maximum once (x402 <code>upto</code>, a Permit2 signature); at the session\'s end sluice settles what the meter counted, nothing if nothing was used. Offered only while the facilitator lists upto, and only for plans with an asset whose session ends within the authorization window (a data plan needs Valid for).'));
		o = s.option(form.Value, 'facilitator_url', _('Facilitator URL'), _('A facilitator that serves upto (its /verify, /settle, /supported).'));
		o.placeholder = 'https://facilitator.example.net';
		o.validate = validateUrl(['http:', 'https:'], true);
		upstream(o);
		o = s.option(form.Value, 'network', _('Network'), NETWORK_HELP);
		o.placeholder = 'eip155:8453';
		o.validate = validateNetwork(false);
		upstream(o);
		o = s.option(form.Value, 'pay_to', _('Pay to'), _('The address settled money goes to (yours).'));
		o.validate = function(section_id, value) {
			return value === '' ? _('Required') : validateAddress(section_id, value);
		};
		upstream(o);
		o = s.option(form.Value, 'max_timeout_seconds', _('Authorization window'),
			_('Seconds a customer\'s authorization stays valid, 900 to 2592000: the longest a session paid this way may run (less 600 s to settle). A plan whose session can end later is not offered by upto.'));
		o.placeholder = '172800';
		o.datatype = 'and(uinteger,range(900,2592000))';
		upstream(o);
		o = s.option(form.Value, 'timeout', _('Facilitator timeout'), _('Seconds one facilitator request may take, 1 to 120.'));
		o.placeholder = '15';
		o.validate = validateSeconds(1, 120);
		upstream(o);

		s = upstreamSection(m, 'hook', _('Session events to a URL'),
			_('Every session start, top-up and end (with its cause and usage) POSTed as JSON to your server, HMAC-signed, queued on flash and retried until it answers 2xx.'));
		o = s.option(form.Value, 'url', _('URL'), _('http:// or https:// address that receives the events.'));
		o.placeholder = 'https://pc.example.net/sluice';
		o.validate = validateUrl(['http:', 'https:'], true);
		upstream(o);
		o = secretOption(s, 'secret', _('Secret'), _('HMAC-SHA256 key of every delivery, at least 16 characters; your server checks the signature with it.'));
		o.validate = function(section_id, value) {
			return (keepsStored(this, section_id, value) || (value || '').length >= 16) ? true : _('At least 16 characters');
		};
		upstream(o);
		o = s.option(form.Value, 'timeout', _('Timeout'), _('Seconds one delivery may take before it counts as failed and is retried, 1 to 300.'));
		o.placeholder = '10';
		o.validate = validateSeconds(1, 300);
		upstream(o);
		o = s.option(form.Value, 'backoff_max', _('Longest retry pause'), _('Seconds between attempts while the receiver fails (doubling from 1 s), 1 to 86400.'));
		o.placeholder = '300';
		o.validate = validateSeconds(1, 86400);
		upstream(o);
		o = s.option(form.Value, 'queue_max', _('Queue size'), _('Bytes of events waiting on flash (units like KiB, MiB allowed), 64 KiB to 1 GiB. Events are never dropped: the queue grows past this rather than lose one.'));
		o.placeholder = '1MiB';
		o.validate = validateBytes(65536, 1073741824);
		upstream(o);

		s = m.section(form.NamedSection, 'http', 'http', _('LAN pay page'),
			_('The customers\' pay page and the x402 endpoint on the LAN: on while an address is set and x402 payments, batch settlement, upto or RADIUS is on, or a PC-sync secret is set. Empty address = off. The package\'s firewall rule keeps it off the WAN.'));
		s.addremove = true;
		o = s.option(form.Value, 'listen', _('Address'),
			_('The router\'s LAN address and a port, e.g. 192.168.1.1:2122 or [fd00::1]:2122. Not 0.0.0.0 or ::, which listen on the WAN too. Save & Apply moves it at once (paid sessions stay); an address that cannot be used is reported and the old one kept.'));
		o.placeholder = '192.168.1.1:2122';
		o.validate = validateListen;
		o = s.option(form.Value, 'rate_limit', _('Requests per minute'), _('Per client address, 1 to 10000 (a burst of the same size is allowed).'));
		o.placeholder = '30';
		o.datatype = 'and(uinteger,range(1,10000))';
		o = s.option(form.Value, 'portal_url', _('Pay page URL'),
			_('The pay page as phones reach it, announced by the captive portal API (RFC 8908), e.g. an https address in front of this one. Empty = http://&lt;address&gt;/portal. Needs a restart.'));
		o.placeholder = 'https://wifi.example.net/portal';
		o.validate = validatePageUrl;
		o = s.option(form.Value, 'venue_url', _('Venue page URL'),
			_('Your venue\'s own page, announced by the captive portal API (RFC 8908). Empty = none. Needs a restart.'));
		o.validate = validatePageUrl;
		o = secretOption(s, 'pcsync_secret', _('PC-sync secret'),
			_('HMAC-SHA256 key by which a PC system logs a user out of the WiFi (POST /pcsync/logout), at least 16 characters. Not set = off. Needs a restart.'));
		o.validate = function(section_id, value) {
			return (value == null || value === '' || value.length >= 16) ? true : _('At least 16 characters (or empty: PC-sync off)');
		};
		o = s.option(form.Value, 'pcsync_window', _('PC-sync window'),
			_('Seconds a PC-sync call\'s timestamp may differ from the router clock, 5 to 3600. Needs a restart.'));
		o.placeholder = '300';
		o.validate = validateSeconds(5, 3600);

		return m.render();
	}
});
