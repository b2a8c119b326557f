'use strict';
'require baseclass';
'require sluice.common as common';

/* Status → Overview: sluice at a glance. Revenue today is summed from the sessions the daemon still lists (started
 * today; paid_total, which covers every payment of a session, grants count 0), per currency: a printed voucher's in
 * its batch's price (cash at the counter). */

/* The currencies printed vouchers are priced in, with their decimals (voucher_list): a ticket's payment is in its
 * batch's currency, which no plan names. */
function voucherCurrencies(list) {
	var out = {};
	((list && list.batches) || []).forEach(function(b) {
		if (b.price && b.price.currency)
			out[String(b.price.currency).toLowerCase()] = { currency: b.price.currency, decimals: b.price.decimals };
	});
	return out;
}

/* Up to this many sessions are read (pages of 500, oldest first) for the revenue; past it the figure says so. */
var MAX_PAGES = 20;

/* Every session the daemon lists, page by page; {sessions, complete}. */
function allSessions() {
	var out = [];
	function next(offset, pages) {
		return common.sessions(undefined, offset, 500).then(function(page) {
			out = out.concat(page.sessions || []);
			if (page.more && pages + 1 < MAX_PAGES)
				return next(offset + (page.sessions || []).length, pages + 1);
			return { sessions: out, complete: !page.more };
		});
	}
	return next(0, 0);
}

function startOfToday() {
	var d = new Date();
	d.setHours(0, 0, 0, 0);
	return d.getTime() / 1000;
}

function revenueToday(sessions, plans, cash) {
	var since = startOfToday(), totals = {};
	sessions.forEach(function(s) {
		if ((s.created_at || 0) < since || !/^\d+$/.test(s.paid_total || '') || s.paid_total === '0')
			return;
		/* A session of a plan since renamed or removed still counts: priced by a plan with its asset, else in units. */
		/* A ticket sold for cash is in its batch's currency, whatever the plan it sells is priced in. */
		var asset = common.paidAssets(s)[0] || '', till = cash[asset], plan = till || common.paidPlan(s, plans);
		var key = plan ? (plan.currency || '') + '/' + plan.decimals : asset + '/units';
		totals[key] = (totals[key] || BigInt(0)) + BigInt(s.paid_total);
	});
	var parts = Object.keys(totals).map(function(k) {
		var cd = k.split('/');
		return cd[1] === 'units' ? _('%s units').format(totals[k].toString()) : common.price(totals[k].toString(), Number(cd[1]), cd[0]);
	});
	if (parts.length)
		return parts.join(', ');
	/* nothing today: 0 in the default plan's currency (the first plan), not a bare 0 */
	var first = plans[Object.keys(plans)[0]];
	return first ? common.price('0', first.decimals, first.currency || '') : '0';
}

return baseclass.extend({
	title: _('Sluice'),

	load: function() {
		return Promise.all([
			common.stats().catch(function(e) { return e; }),
			allSessions().catch(function() { return { sessions: [], complete: true }; }),
			common.pricing().catch(function() { return { plans: [] }; }),
			common.vouchers().catch(function() { return null; })
		]);
	},

	render: function(data) {
		var stats = data[0], sessions = data[1], pricing = data[2], cash = voucherCurrencies(data[3]);
		var rows;
		if (stats instanceof Error) {
			rows = [ [ _('Service'), _('Not running') ] ];
		}
		else {
			var plans = {};
			(pricing.plans || []).forEach(function(p) { plans[p.id] = p; });
			var m = stats.meter || {};
			/* from the list, not the daemon's counters: a gate-pending session is ACTIVE there but nobody is online */
			var c = common.countLive(sessions.sessions.filter(function(x) { return x.state === 'ACTIVE' || x.state === 'PENDING'; }));
			var waiting = [];
			if (c.gatePending)
				waiting.push(_('%d gate pending').format(c.gatePending));
			if (c.pending)
				waiting.push(_('%d pending').format(c.pending));
			rows = [
				[ _('Active sessions'), String(c.active) + (waiting.length ? ' (' + waiting.join(', ') + ')' : '') ],
				[ _('Revenue today'), revenueToday(sessions.sessions, plans, cash) + (sessions.complete ? '' : ' ' + _('(first %d sessions)').format(sessions.sessions.length)) ],
				[ _('Last usage poll'), _('%s ms').format(m.tick_ms_last != null ? Math.round(m.tick_ms_last) : '-') ],
				[ _('Portal'), (m.flavour && m.flavour !== 'unknown' ? m.flavour : _('not answering yet')) + ' · ' + _('%d clients seen').format(m.clients || 0) ]
			];
			/* The hotspot's device metered wrong: the portal's counters meter instead (docs/configuration.md shape_device). */
			if (stats.metering && stats.metering.problem)
				rows.push([ _('Metering'), _('Error: %s. Metered by the portal\'s counters.').format(stats.metering.problem) ]);
			var trials = common.trialsText(stats);
			if (trials)
				rows.push([ _('Free trials'), trials ]);
			if (Array.isArray(stats.restart_required) && stats.restart_required.length)
				rows.push([ _('Restart needed'), stats.restart_required.join(', ') ]);
			if (Array.isArray(stats.config_problems) && stats.config_problems.length)
				rows.push([ _('Settings ignored'), _('%d (see Services → Sluice)').format(stats.config_problems.length) ]);
		}
		return E('table', { 'class': 'table', 'id': 'sluice_overview' }, rows.map(function(r) {
			return E('tr', { 'class': 'tr' }, [
				E('td', { 'class': 'td left', 'width': '33%' }, r[0]),
				E('td', { 'class': 'td left' }, r[1])
			]);
		}));
	}
});
