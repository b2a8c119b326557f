'use strict';
'require view';
'require dom';
'require fs';
'require rpc';
'require ui';
'require sluice.common as common';
'require sluice.tickets as tickets';

/*
 * Printed vouchers (docs/vouchers.md): make a batch of one-use codes for a plan, print them as tickets from the
 * browser, list the batches (used / unused / expired), revoke one. The codes are in voucher_create's answer only: the
 * page prints from that answer and never asks for them again. A ticket's QR code opens the pay page with the code
 * filled in; it is drawn by the pay page's own encoder (/usr/share/sluice/portal/qr.js, read through rpcd: no CDN,
 * no copy of it here).
 */

var callCreate = rpc.declare({ object: 'sluice', method: 'voucher_create', params: [ 'plan', 'count', 'steps', 'expires', 'note', 'price', 'currency' ] });
var callList = rpc.declare({ object: 'sluice', method: 'voucher_list' });
var callRevoke = rpc.declare({ object: 'sluice', method: 'voucher_revoke', params: [ 'batch' ] });

var QR_SCRIPT = '/usr/share/sluice/portal/qr.js';
/* At most this many tickets in one batch (the daemon's bound too). */
var MAX_COUNT = 1000;

/* False for a read-only LuCI account (rpcd's ACL grants it only the read part). */
function writableView() {
	return typeof L.hasViewPermission === 'function' ? L.hasViewPermission() !== false : true;
}

var buys = tickets.buys;

function notify(text, kind) {
	return ui.addNotification(null, E('p', text), kind || 'info');
}

return view.extend({
	handleSave: null,
	handleSaveApply: null,
	handleReset: null,

	/* Never rejects: with the daemon down the page still renders and says so. A read-only account is not asked for the
	 * list: voucher_list is in the ACL's write part (the batches are the till's), so rpcd would refuse it. */
	load: function() {
		return Promise.all([
			writableView() ? callList().then(common.unwrap).catch(function(e) { return e; }) : null,
			common.pricing().catch(function() { return null; }),
			L.resolveDefault(fs.read(QR_SCRIPT), null)
		]);
	},

	planTitle: function(plan) {
		return plan ? (plan.display_name || plan.id) : '';
	},

	/* The form's fields (render makes them) and the boxes the answers go in. */
	inputs: null,
	madeBox: null,
	batchesBox: null,
	/* The pay page's URL the tickets carry (voucher_list's `pay_page`); null while the LAN endpoint is off. */
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
		var day = get('expires'), expires;
		if (day) {
			// The whole chosen day counts: a ticket "valid until 31 Dec" still sells on the 31st in the evening.
			expires = Math.floor(new Date(day + 'T23:59:59').getTime() / 1000);
			if (!(expires > Date.now() / 1000))
				return notify(_('The last day must be today or later.'), 'warning');
		}
		var note = get('note'), price = tickets.typedPrice(get('price'), get('currency'));
		if (price.error)
			return notify(price.error, 'warning');
		var out = this.madeBox;
		return callCreate(plan.id, count, steps, expires, note || undefined, price.amount, price.currency).then(common.unwrap).then(L.bind(function(made) {
			var title = this.planTitle(plan);
			dom.content(out, E('div', { 'class': 'alert-message notice' }, [
				E('h4', _('Batch %s: %d tickets of %s, %s each').format(made.batch, made.codes.length, title, buys(made.metric, made.allotment))),
				E('p', E('strong', _('These codes are shown only now. Print the tickets before leaving this page; sluice keeps no readable copy.'))),
				E('p', [ E('button', { 'class': 'cbi-button cbi-button-action', 'click': L.bind(function() {
					if (!tickets.printSheet(made, title, qr, this.payPage))
						notify(tickets.POPUP_BLOCKED, 'warning');
				}, this) }, _('Print tickets')) ]),
				qr ? '' : E('p', _('QR codes cannot be drawn (the pay page\'s qr.js is missing): the tickets carry the code and the address.')),
				this.payPage ? '' : E('p', _('The pay page is off (Settings → LAN endpoint): switch it on, or the tickets cannot be redeemed.')),
				E('pre', { 'style': 'column-width: 12em' }, made.codes.join('\n'))
			]));
			return this.refreshList();
		}, this)).catch(function(e) {
			notify(common.errorText(e), 'danger');
		});
	},

	handleRevoke: function(batch) {
		if (!confirm(_('Revoke batch %s? Its unused tickets will be refused; sessions already sold go on.').format(batch.id)))
			return;
		return callRevoke(batch.id).then(common.unwrap).then(L.bind(function(r) {
			notify(_('Batch %s revoked: %d unused tickets no longer work.').format(r.batch, r.revoked));
			return this.refreshList();
		}, this)).catch(function(e) {
			notify(common.errorText(e), 'danger');
		});
	},

	refreshList: function() {
		return callList().then(common.unwrap).then(L.bind(function(r) {
			this.payPage = tickets.payPage(r);
			dom.content(this.batchesBox, this.renderBatches(r.batches || []));
		}, this)).catch(function(e) {
			notify(common.errorText(e), 'danger');
		});
	},

	renderBatches: function(batches) {
		if (batches.length === 0)
			return E('p', { 'class': 'cbi-section-descr' }, _('No batch yet.'));
		var writable = writableView();
		var rows = batches.map(L.bind(function(b) {
			var status = b.revoked ? _('Revoked') : (b.expired > 0 || (b.expires && b.expires * 1000 < Date.now())) ? _('Expired') : _('Selling');
			return E('tr', { 'class': 'tr' }, [
				E('td', { 'class': 'td' }, E('code', b.id)),
				E('td', { 'class': 'td' }, b.plan + ' · ' + buys(b.metric, b.allotment)),
				E('td', { 'class': 'td' }, common.timestamp(b.created)),
				E('td', { 'class': 'td' }, b.expires ? common.timestamp(b.expires) : _('never')),
				E('td', { 'class': 'td' }, b.note || '-'),
				E('td', { 'class': 'td' }, tickets.priceText(b.price) || '-'),
				E('td', { 'class': 'td' }, String(b.count)),
				E('td', { 'class': 'td' }, String(b.used)),
				E('td', { 'class': 'td' }, String(b.unused)),
				E('td', { 'class': 'td' }, String(b.expired)),
				E('td', { 'class': 'td' }, status),
				E('td', { 'class': 'td' }, (writable && !b.revoked)
					? E('button', { 'class': 'cbi-button cbi-button-remove', 'click': L.bind(this.handleRevoke, this, b) }, _('Revoke')) : '')
			]);
		}, this));
		return E('table', { 'class': 'table' }, [
			E('tr', { 'class': 'tr table-titles' }, [
				_('Batch'), _('Each ticket'), _('Made'), _('Last day'), _('Note'), _('Price'), _('Tickets'), _('Used'), _('Unused'), _('Expired'), _('Status'), ''
			].map(function(h) { return E('th', { 'class': 'th' }, h); }))
		].concat(rows));
	},

	render: function(data) {
		if (!writableView())
			return E([], [
				E('h2', _('Vouchers')),
				E('div', { 'class': 'alert-message notice' }, _('Vouchers are like cash in the till: listing, making and revoking them needs an administrator login.'))
			]);
		var list = data[0], pricing = data[1], qr = tickets.qrEncoder(data[2]);
		var plans = ((pricing && pricing.plans) || []).filter(function(p) { return !p.trial_every; });
		var down = list instanceof Error;
		this.payPage = down ? null : tickets.payPage(list);
		var inputs = this.inputs = {
			plan: E('select', { 'class': 'cbi-input-select', 'name': 'plan' },
				plans.map(L.bind(function(p) { return E('option', { 'value': p.id }, this.planTitle(p) + ' (' + _('1 step = %s').format(buys(p.metric, p.step_size)) + ')'); }, this))),
			count: E('input', { 'class': 'cbi-input-text', 'name': 'count', 'type': 'number', 'min': 1, 'max': MAX_COUNT, 'value': 20 }),
			steps: E('input', { 'class': 'cbi-input-text', 'name': 'steps', 'type': 'number', 'min': 1, 'value': 1 }),
			expires: E('input', { 'class': 'cbi-input-text', 'name': 'expires', 'type': 'date' }),
			note: E('input', { 'class': 'cbi-input-text', 'name': 'note', 'maxlength': 64 }),
			price: E('input', { 'class': 'cbi-input-text', 'name': 'price', 'inputmode': 'decimal', 'placeholder': '2.50' }),
			currency: E('input', { 'class': 'cbi-input-text', 'name': 'currency', 'maxlength': 12, 'placeholder': 'EUR' })
		};
		this.madeBox = E('div', { 'id': 'sluice-voucher-made' });
		this.batchesBox = E('div', { 'id': 'sluice-voucher-batches' }, down ? '' : this.renderBatches(list.batches || []));
		var form = E('div', { 'class': 'cbi-section sluice-voucher-form' }, [
			E('h3', _('New batch')),
			E('p', { 'class': 'cbi-section-descr' }, _('Each ticket carries one code that gives one customer one session of the plan, once: a code typed a second time, on any phone, is refused. Keep printed tickets like cash.')),
			E('div', { 'class': 'cbi-value' }, [ E('label', { 'class': 'cbi-value-title' }, _('Plan')),
				E('div', { 'class': 'cbi-value-field' }, inputs.plan) ]),
			E('div', { 'class': 'cbi-value' }, [ E('label', { 'class': 'cbi-value-title' }, _('Tickets')),
				E('div', { 'class': 'cbi-value-field' }, [ inputs.count,
					E('div', { 'class': 'cbi-value-description' }, _('How many to print (up to %d a batch).').format(MAX_COUNT)) ]) ]),
			E('div', { 'class': 'cbi-value' }, [ E('label', { 'class': 'cbi-value-title' }, _('Steps per ticket')),
				E('div', { 'class': 'cbi-value-field' }, [ inputs.steps,
					E('div', { 'class': 'cbi-value-description' }, _('What one ticket buys, in steps of the plan: with a plan of 1 hour per step, 2 = two hours.')) ]) ]),
			E('div', { 'class': 'cbi-value' }, [ E('label', { 'class': 'cbi-value-title' }, _('Last day')),
				E('div', { 'class': 'cbi-value-field' }, [ inputs.expires,
					E('div', { 'class': 'cbi-value-description' }, _('Optional: after this day the tickets no longer work (printed on them). Empty: they never expire.')) ]) ]),
			E('div', { 'class': 'cbi-value' }, [ E('label', { 'class': 'cbi-value-title' }, _('Note')),
				E('div', { 'class': 'cbi-value-field' }, [ inputs.note,
					E('div', { 'class': 'cbi-value-description' }, _('Optional, for the staff: who or what the batch is for ("terrace", "weekend").')) ]) ]),
			E('div', { 'class': 'cbi-value' }, [ E('label', { 'class': 'cbi-value-title' }, _('Price')),
				E('div', { 'class': 'cbi-value-field' }, [ inputs.price, ' ', inputs.currency,
					E('div', { 'class': 'cbi-value-description' }, _('Optional: what one ticket costs at the counter (2.50 EUR), printed on it. Each ticket redeemed counts as a sale of that much in the revenue, sales and the fleet; a revoked or unsold ticket counts nothing. Empty: the tickets count 0.')) ]) ]),
			E('div', { 'class': 'cbi-page-actions' }, E('button', { 'class': 'cbi-button cbi-button-save', 'click': L.bind(this.handleCreate, this, plans, qr) }, _('Generate'))),
			this.madeBox
		]);
		return E([], [
			E('h2', _('Vouchers')),
			E('div', { 'class': 'cbi-map-descr' }, _('Sell WiFi over the counter: print tickets here, hand one to each customer, who types its code (or scans its QR code) on the WiFi sign-in page. No RADIUS server needed.')),
			down ? E('div', { 'class': 'alert-message warning' }, common.errorText(list)) : '',
			plans.length === 0 ? E('p', _('No paid plan is configured (Settings → Plans): a batch sells a plan.')) : form,
			E('div', { 'class': 'cbi-section' }, [
				E('h3', _('Batches')),
				E('p', { 'class': 'cbi-section-descr' }, _('Used: sold to a customer. Unused: still sell. Expired: left unsold past the last day. Revoking a batch stops its unused tickets (for a lost or stolen sheet); sessions already sold go on.')),
				this.batchesBox
			])
		]);
	}
});
