'use strict';
'require view';
'require dom';
'require fs';
'require poll';
'require rpc';
'require ui';
'require sluice.common as common';
'require sluice.tickets as tickets';

/*
 * The counter: what a café's staff login may do (rpcd ACL luci-app-sluice-staff, docs/quickstart.md "A staff login for
 * the counter"): print a batch of vouchers, revoke one, see who is on, add time or data to a live session, end one.
 * Nothing else is reachable from here, and rpcd refuses the rest whatever a page asks: no settings, no secrets, no
 * payout, no prices, no free session (Extend adds to a live session only: ubus `extend`). The daemon logs each of these
 * acts with the login's name.
 */

var callCreate = rpc.declare({ object: 'sluice', method: 'voucher_create', params: [ 'plan', 'count', 'steps', 'note', 'price', 'currency' ] });
var callList = rpc.declare({ object: 'sluice', method: 'voucher_list' });
var callRevoke = rpc.declare({ object: 'sluice', method: 'voucher_revoke', params: [ 'batch' ] });

var QR_SCRIPT = '/usr/share/sluice/portal/qr.js';
var MAX_COUNT = 1000;

/* Extension units: seconds or bytes per unit. */
var UNITS = [
	[ 'min', 'seconds', 60, _('minutes') ],
	[ 'h', 'seconds', 3600, _('hours') ],
	[ 'MiB', 'bytes', 1048576, _('MiB') ],
	[ 'GiB', 'bytes', 1073741824, _('GiB') ]
];

function notify(text, kind) {
	return ui.addNotification(null, E('p', text), kind || 'info');
}

function failure(err) {
	notify(common.errorText(err), 'danger');
}

function planTitle(plan) {
	return plan ? (plan.display_name || plan.id) : '';
}

return view.extend({
	handleSave: null,
	handleSaveApply: null,
	handleReset: null,

	/* Never rejects: with the daemon down the page still renders and says so. */
	load: function() {
		return Promise.all([
			callList().then(common.unwrap).catch(function(e) { return e; }),
			common.pricing().catch(function() { return null; }),
			L.resolveDefault(fs.read(QR_SCRIPT), null),
			common.sessions('LIVE', 0, 500).catch(function(e) { return e; })
		]);
	},

	inputs: null,
	madeBox: null,
	batchesBox: null,
	sessionsBox: null,
	payPage: null,

	handleCreate: function(plans, qr) {
		var inputs = this.inputs;
		var get = function(name) { return String(inputs[name].value == null ? '' : inputs[name].value).trim(); };
		var plan = plans.filter(function(p) { return p.id === get('plan'); })[0];
		var count = Number(get('count')), steps = Number(get('steps'));
		if (!plan)
			return notify(_('Choose a plan first.'), 'warning');
		if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT)
			return notify(_('How many tickets: a whole number from 1 to %d.').format(MAX_COUNT), 'warning');
		if (!Number.isInteger(steps) || steps < Number(plan.min_steps) || steps > Number(plan.max_steps))
			return notify(_('Each ticket sells %s to %s steps of this plan.').format(plan.min_steps, plan.max_steps), 'warning');
		var note = get('note'), price = tickets.typedPrice(get('price'), get('currency'));
		if (price.error)
			return notify(price.error, 'warning');
		var out = this.madeBox;
		return callCreate(plan.id, count, steps, note || undefined, price.amount, price.currency).then(common.unwrap).then(L.bind(function(made) {
			var title = planTitle(plan);
			dom.content(out, E('div', { 'class': 'alert-message notice' }, [
				E('h4', _('Batch %s: %d tickets of %s, %s each').format(made.batch, made.codes.length, title, tickets.buys(made.metric, made.allotment))),
				E('p', E('strong', _('These codes are shown only now. Print the tickets before leaving this page; sluice keeps no readable copy.'))),
				E('p', [ E('button', { 'class': 'cbi-button cbi-button-action', 'click': L.bind(function() {
					if (!tickets.printSheet(made, title, qr, this.payPage))
						notify(tickets.POPUP_BLOCKED, 'warning');
				}, this) }, _('Print tickets')) ]),
				E('pre', { 'style': 'column-width: 12em' }, made.codes.join('\n'))
			]));
			return this.refreshVouchers();
		}, this)).catch(failure);
	},

	handleRevoke: function(batch) {
		if (!confirm(_('Revoke batch %s? Its unused tickets will be refused; sessions already sold go on.').format(batch.id)))
			return;
		return callRevoke(batch.id).then(common.unwrap).then(L.bind(function(r) {
			notify(_('Batch %s revoked: %d unused tickets no longer work.').format(r.batch, r.revoked));
			return this.refreshVouchers();
		}, this)).catch(failure);
	},

	handleExtend: function(s, amountInput, unitSelect) {
		var count = String(amountInput.value || '').trim();
		var unit = UNITS.filter(function(u) { return u[0] === unitSelect.value; })[0];
		if (!/^\d+$/.test(count) || Number(count) < 1 || !unit)
			return failure(new Error(_('Expecting a whole number of at least 1')));
		return common.extend(s.mac, unit[1], Number(count) * unit[2]).then(function() {
			notify(_('Added %s %s to the session of %s').format(count, unit[3], s.mac));
		}).catch(failure).then(L.bind(this.refreshSessions, this));
	},

	handleEnd: function(s) {
		if (!confirm(_('End the session of %s? The device loses access at once.').format(s.mac)))
			return;
		return common.terminate(s.mac).then(function() {
			notify(_('Session of %s ended').format(s.mac));
		}).catch(failure).then(L.bind(this.refreshSessions, this));
	},

	refreshVouchers: function() {
		return callList().then(common.unwrap).then(L.bind(function(r) {
			this.payPage = tickets.payPage(r);
			dom.content(this.batchesBox, this.renderBatches(r.batches || []));
		}, this)).catch(failure);
	},

	refreshSessions: function() {
		return common.sessions('LIVE', 0, 500).then(L.bind(function(page) {
			// The poll redraws the table every 10 s: what the staff typed in a row, and where the cursor was,
			// survive the redraw, or an extension typed across it would add the default instead.
			var typed = {}, focused = document.activeElement;
			this.sessionsBox.querySelectorAll('tr[data-mac]').forEach(function(row) {
				typed[row.getAttribute('data-mac')] = {
					amount: row.querySelector('input[name=extend_amount]').value,
					unit: row.querySelector('select[name=extend_unit]').value,
					focus: row.contains(focused) ? focused.getAttribute('name') : null
				};
			});
			dom.content(this.sessionsBox, this.renderSessions(page.sessions || []));
			this.sessionsBox.querySelectorAll('tr[data-mac]').forEach(function(row) {
				var was = typed[row.getAttribute('data-mac')];
				if (!was)
					return;
				row.querySelector('input[name=extend_amount]').value = was.amount;
				var unit = row.querySelector('select[name=extend_unit]');
				if (unit.querySelector('option[value="' + was.unit + '"]'))
					unit.value = was.unit;
				if (was.focus)
					row.querySelector('[name=' + was.focus + ']').focus();
			});
		}, this)).catch(L.bind(function(e) {
			dom.content(this.sessionsBox, E('div', { 'class': 'alert-message warning' }, common.errorText(e)));
		}, this));
	},

	renderBatches: function(batches) {
		if (batches.length === 0)
			return E('p', { 'class': 'cbi-section-descr' }, _('No batch yet.'));
		var rows = batches.map(L.bind(function(b) {
			var status = b.revoked ? _('Revoked') : (b.expired > 0 || (b.expires && b.expires * 1000 < Date.now())) ? _('Expired') : _('Selling');
			return E('tr', { 'class': 'tr' }, [
				E('td', { 'class': 'td' }, E('code', b.id)),
				E('td', { 'class': 'td' }, b.plan + ' · ' + tickets.buys(b.metric, b.allotment)),
				E('td', { 'class': 'td' }, common.timestamp(b.created)),
				E('td', { 'class': 'td' }, b.note || '-'),
				E('td', { 'class': 'td' }, tickets.priceText(b.price) || '-'),
				E('td', { 'class': 'td' }, String(b.used) + ' / ' + String(b.count)),
				E('td', { 'class': 'td' }, status),
				E('td', { 'class': 'td' }, b.revoked ? ''
					: E('button', { 'class': 'cbi-button cbi-button-remove', 'click': L.bind(this.handleRevoke, this, b) }, _('Revoke')))
			]);
		}, this));
		return E('table', { 'class': 'table' }, [
			E('tr', { 'class': 'tr table-titles' }, [ _('Batch'), _('Each ticket'), _('Made'), _('Note'), _('Price'), _('Used'), _('Status'), '' ]
				.map(function(h) { return E('th', { 'class': 'th' }, h); }))
		].concat(rows));
	},

	renderSessions: function(sessions) {
		if (sessions.length === 0)
			return E('p', { 'class': 'cbi-section-descr' }, _('Nobody is on.'));
		var rows = sessions.map(L.bind(function(s) {
			var amount = E('input', { 'class': 'cbi-input-text', 'type': 'number', 'min': '1', 'value': '1', 'style': 'width:5em', 'name': 'extend_amount' });
			var unit = E('select', { 'class': 'cbi-input-select', 'style': 'width:auto', 'name': 'extend_unit' },
				UNITS.filter(function(u) { return u[1] === s.metric; }).map(function(u) { return E('option', { 'value': u[0] }, u[3]); }));
			return E('tr', { 'class': 'tr', 'data-mac': s.mac }, [
				E('td', { 'class': 'td' }, [ s.mac, s.ip ? E('br') : '', s.ip || '' ]),
				E('td', { 'class': 'td' }, s.plan || '-'),
				E('td', { 'class': 'td' }, common.stateName(s.state) + (common.gatePending(s) ? ' (' + _('gate pending') + ')' : '')),
				E('td', { 'class': 'td' }, common.amount(s.metric, s.remaining)),
				E('td', { 'class': 'td' }, [
					amount, ' ', unit, ' ',
					E('button', { 'class': 'cbi-button cbi-button-apply', 'click': L.bind(this.handleExtend, this, s, amount, unit) }, _('Extend')),
					' ',
					E('button', { 'class': 'cbi-button cbi-button-remove', 'click': L.bind(this.handleEnd, this, s) }, _('End'))
				])
			]);
		}, this));
		return E('table', { 'class': 'table' }, [
			E('tr', { 'class': 'tr table-titles' }, [ _('Device'), _('Plan'), _('State'), _('Left'), '' ]
				.map(function(h) { return E('th', { 'class': 'th' }, h); }))
		].concat(rows));
	},

	render: function(data) {
		var list = data[0], pricing = data[1], qr = tickets.qrEncoder(data[2]), live = data[3];
		var plans = ((pricing && pricing.plans) || []).filter(function(p) { return !p.trial_every; });
		var down = list instanceof Error;
		this.payPage = down ? null : tickets.payPage(list);
		var inputs = this.inputs = {
			plan: E('select', { 'class': 'cbi-input-select', 'name': 'plan' },
				plans.map(function(p) { return E('option', { 'value': p.id }, planTitle(p) + ' (' + _('1 step = %s').format(tickets.buys(p.metric, p.step_size)) + ')'); })),
			count: E('input', { 'class': 'cbi-input-text', 'name': 'count', 'type': 'number', 'min': 1, 'max': MAX_COUNT, 'value': 10 }),
			steps: E('input', { 'class': 'cbi-input-text', 'name': 'steps', 'type': 'number', 'min': 1, 'value': 1 }),
			note: E('input', { 'class': 'cbi-input-text', 'name': 'note', 'maxlength': 64 }),
			price: E('input', { 'class': 'cbi-input-text', 'name': 'price', 'inputmode': 'decimal', 'placeholder': '2.50' }),
			currency: E('input', { 'class': 'cbi-input-text', 'name': 'currency', 'maxlength': 12, 'placeholder': 'EUR' })
		};
		this.madeBox = E('div', { 'id': 'sluice-counter-made' });
		this.batchesBox = E('div', { 'id': 'sluice-counter-batches' }, down ? '' : this.renderBatches(list.batches || []));
		this.sessionsBox = E('div', { 'id': 'sluice-counter-sessions' }, live instanceof Error
			? E('div', { 'class': 'alert-message warning' }, common.errorText(live)) : this.renderSessions(live.sessions || []));
		var field = function(title, input, help) {
			return E('div', { 'class': 'cbi-value' }, [ E('label', { 'class': 'cbi-value-title' }, title),
				E('div', { 'class': 'cbi-value-field' }, help ? [ input, E('div', { 'class': 'cbi-value-description' }, help) ] : input) ]);
		};
		poll.add(L.bind(this.refreshSessions, this), 10);
		return E([], [
			E('h2', _('Counter')),
			E('div', { 'class': 'cbi-map-descr' }, _('Sell WiFi over the counter and look after the customers who are on: print tickets, revoke a lost sheet, add time or data to a session, end one.')),
			down ? E('div', { 'class': 'alert-message warning' }, common.errorText(list)) : '',
			E('div', { 'class': 'cbi-section' }, [
				E('h3', _('Who is on')),
				this.sessionsBox
			]),
			plans.length === 0 ? E('p', _('No paid plan is configured: ask the administrator.')) : E('div', { 'class': 'cbi-section sluice-counter-form' }, [
				E('h3', _('Print tickets')),
				E('p', { 'class': 'cbi-section-descr' }, _('Each ticket carries one code that gives one customer one session of the plan, once. Keep printed tickets like cash.')),
				field(_('Plan'), inputs.plan),
				field(_('Tickets'), inputs.count, _('How many to print (up to %d a batch).').format(MAX_COUNT)),
				field(_('Steps per ticket'), inputs.steps, _('What one ticket buys, in steps of the plan: with a plan of 1 hour per step, 2 = two hours.')),
				field(_('Note'), inputs.note, _('Optional: who or what the batch is for ("terrace", "weekend").')),
				field(_('Price'), inputs.price, _('Optional: what one ticket costs at the counter (2.50), printed on it; each ticket redeemed counts as a sale of that much in the revenue.')),
				field(_('Currency'), inputs.currency, _('The price\'s currency (EUR, USD…), needed with a price.')),
				E('div', { 'class': 'cbi-page-actions' }, E('button', { 'class': 'cbi-button cbi-button-save', 'click': L.bind(this.handleCreate, this, plans, qr) }, _('Generate'))),
				this.madeBox
			]),
			E('div', { 'class': 'cbi-section' }, [
				E('h3', _('Batches')),
				E('p', { 'class': 'cbi-section-descr' }, _('Revoking a batch stops its unused tickets (for a lost or stolen sheet); sessions already sold go on.')),
				this.batchesBox
			])
		]);
	}
});
