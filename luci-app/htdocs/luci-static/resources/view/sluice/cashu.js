'use strict';
'require view';
'require dom';
'require form';
'require poll';
'require rpc';
'require uci';
'require ui';
'require sluice.common as common';

/*
 * TollGate / Cashu (docs/tollgate.md): the `tollgate` section's settings, the ecash the router holds per mint (ubus
 * cashu_balance: amounts only, never a token) and "Pay out now" (ubus cashu_payout). Written for the café owner: what a
 * mint is, why the router caps what it holds, what a payout does and what it costs.
 */

var callBalance = rpc.declare({ object: 'sluice', method: 'cashu_balance' });
var callPayout = rpc.declare({ object: 'sluice', method: 'cashu_payout', params: [ 'mint' ] });

/* The same forms the daemon's loader takes (src/config/tollgate.ts). */
var ADDRESS_RE = /^[a-z0-9_.+-]{1,64}@(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/i;
var LNURL_RE = /^lnurl1[02-9ac-hj-np-z]{6,2000}$/i;

function notify(text, kind) {
	return ui.addNotification(null, E('p', text), kind || 'info');
}

function sat(v) {
	return _('%s sat').format(String(v == null ? 0 : v));
}

function validSats(min) {
	return function(section_id, value) {
		if (value === '' || value == null)
			return true;
		return (/^\d{1,16}$/.test(value) && +value >= min) ? true : _('A whole number of sat, at least %d').format(min);
	};
}

var STATE_TEXT = {
	paid: _('Paid'),
	pending: _('Under way'),
	failed: _('Failed: the ecash is held again'),
	nothing: _('Nothing to pay out')
};

return view.extend({
	load: function() {
		return Promise.all([
			L.resolveDefault(callBalance(), null).then(function(r) { return (r && typeof r === 'object') ? r : null; }),
			uci.load('sluice')
		]);
	},

	handlePayout: function(mint, ev) {
		var button = ev && ev.currentTarget;
		if (button)
			button.disabled = true;
		return callPayout(mint).then(common.unwrap).then(L.bind(function(r) {
			var text = STATE_TEXT[r.state] || r.state;
			if (r.state === 'paid')
				text = _('Paid %s to your Lightning address (mint fee %s, Lightning fee %s; %s came back and stays here).')
					.format(sat(r.amount), sat(r.input_fee), sat(r.lightning_fee), sat(r.change));
			else if (r.state === 'pending')
				text = _('The payout is under way: the mint is still paying. This page shows when it ends; nothing is paid twice.');
			else if (r.reason)
				text = text + ' (' + r.reason + ')';
			notify(text, r.state === 'failed' ? 'warning' : 'info');
			return this.refresh();
		}, this)).catch(function(e) {
			notify(common.errorText(e), 'danger');
		}).finally(function() {
			if (button)
				button.disabled = false;
		});
	},

	refresh: function() {
		return L.resolveDefault(callBalance(), null).then(L.bind(function(r) {
			dom.content(this.balanceBox, this.renderBalance(r && typeof r === 'object' ? r : null));
		}, this));
	},

	renderBalance: function(b) {
		if (!b || !Array.isArray(b.mints))
			return E('p', { 'class': 'cbi-section-descr' }, _('Cashu is off, or sluice is not running: enable TollGate / Cashu below and Save & Apply.'));
		var writable = typeof L.hasViewPermission === 'function' ? L.hasViewPermission() !== false : true;
		var canPay = writable && !!b.payout_address;
		var rows = b.mints.map(L.bind(function(m) {
			return E('tr', { 'class': 'tr' }, [
				E('td', { 'class': 'td' }, [ m.mint + (m.accepted ? '' : ' ' + _('(no longer accepted)')),
					/* cashu_balance's reachable/checked_at/last_error: without this a mint down shows only in the log */
					m.reachable === false ? E('div', { 'class': 'alert-message warning', 'title': m.last_error || '' },
						_('The mint did not answer at %s: its tokens are refused and payouts wait until it answers again.').format(common.timestamp(m.checked_at))) : '' ]),
				E('td', { 'class': 'td' }, sat(m.balance)),
				E('td', { 'class': 'td' }, String(m.proofs)),
				E('td', { 'class': 'td' }, m.pending_payouts > 0 ? _('%s on its way').format(sat(m.pending_sat)) : (m.keyset_swaps > 0 ? _('Moving to the mint\'s new keys') : '-')),
				E('td', { 'class': 'td' }, (canPay && String(m.balance) !== '0')
					? E('button', { 'class': 'cbi-button cbi-button-action', 'click': L.bind(this.handlePayout, this, m.mint) }, _('Pay out now')) : '')
			]);
		}, this));
		var history = (b.payouts || []).map(function(p) {
			return E('tr', { 'class': 'tr' }, [
				E('td', { 'class': 'td' }, common.timestamp(p.at)),
				E('td', { 'class': 'td' }, p.mint),
				E('td', { 'class': 'td' }, sat(p.amount)),
				E('td', { 'class': 'td' }, p.lightning_fee == null ? sat(p.input_fee) + ' + ' + _('up to %s').format(sat(p.fee_reserve))
					: sat(Number(p.input_fee) + Number(p.lightning_fee))),
				E('td', { 'class': 'td' }, STATE_TEXT[p.state] || p.state)
			]);
		});
		/* A payout's ecash is out of total, but counts toward max_balance until the mint confirms it (a failed
		 * payout gives it back): said, or the cap looks like room that is not there. */
		var leaving = b.mints.reduce(function(s, m) { return s + Number(m.pending_sat || 0); }, 0);
		var leavingText = leaving > 0
			? _('A payout of %s on its way counts toward that until the mint confirms it.').format(sat(leaving)) + ' '
			: '';
		return E([], [
			E('p', {}, _('Held now: %s of at most %s.').format(sat(b.total), sat(b.max_balance)) + ' ' + leavingText
				+ (b.payout_address ? _('Paid out to %s once a mint holds %s.').format(b.payout_address, sat(b.payout_min))
					: _('No payout address is set: the ecash stays on the router until you set one below.'))),
			E('table', { 'class': 'table' }, [
				E('tr', { 'class': 'tr table-titles' }, [ _('Mint'), _('Held'), _('Tokens'), _('Payout'), '' ]
					.map(function(h) { return E('th', { 'class': 'th' }, h); }))
			].concat(rows.length ? rows : [ E('tr', { 'class': 'tr' }, E('td', { 'class': 'td', 'colspan': 5 }, _('Nothing held yet.'))) ])),
			history.length ? E('h4', _('Last payouts')) : '',
			history.length ? E('table', { 'class': 'table' }, [
				E('tr', { 'class': 'tr table-titles' }, [ _('When'), _('Mint'), _('Paid'), _('Fees'), _('State') ]
					.map(function(h) { return E('th', { 'class': 'th' }, h); }))
			].concat(history)) : ''
		]);
	},

	render: function(data) {
		var m, s, o;
		var plans = uci.sections('sluice', 'pricing').filter(function(p) { return !p.trial_every; });

		this.balanceBox = E('div', { 'id': 'sluice-cashu-balance' }, this.renderBalance(data[0]));
		poll.add(L.bind(this.refresh, this), 15);

		/* The page's title and what Cashu is come first, then the balance, then the settings: form.Map would put its own
		 * title under whatever is rendered before it, so it gets none and the page writes them. */
		var title = _('TollGate / Cashu');
		var intro = _('Customers can pay with Cashu ecash: digital cash their wallet app holds, paid as a token (TollGate\'s apps and routers pay this way by themselves). The router redeems each token at its mint before the customer goes online, keeps the ecash, and pays it out to your Lightning wallet.');
		m = new form.Map('sluice');

		s = m.section(form.NamedSection, 'tollgate', 'tollgate', _('Settings'));
		s.addremove = true;

		o = s.option(form.Flag, 'enabled', _('Take Cashu payments'));
		o.rmempty = false;

		o = s.option(form.Value, 'listen', _('TollGate address'),
			_('The router\'s LAN address and port TollGate apps talk to, usually 192.168.1.1:2121. Empty: no TollGate door (Cashu still works on the sign-in page).'));
		o.placeholder = '192.168.1.1:2121';
		o.datatype = 'ipaddrport(1)';

		o = s.option(form.ListValue, 'plan', _('Plan sold'), _('What a Cashu payment buys: time or data, in this plan\'s steps.'));
		plans.forEach(function(p) { o.value(p['.name'], p.title || p['.name']); });

		o = s.option(form.DynamicList, 'mint', _('Mints'),
			_('A mint is the service that issues the ecash (like a bank issuing vouchers). The router takes tokens only from the mints listed here, and what it earns stays at those mints until it is paid out: list only mints you trust, one web address each (https://…).'));
		o.validate = function(section_id, value) {
			if (value === '' || value == null)
				return true;
			return /^https?:\/\/[^\s\/@]+(\/\S*)?$/.test(value) ? true : _('A web address, https://…');
		};

		o = s.option(form.Value, 'price_per_step', _('Price per step (sat)'),
			_('What one step of the plan costs, in sat (1 sat = 0.00000001 bitcoin). The mint\'s small fee per token is taken from what the customer pays.'));
		o.validate = validSats(1);

		o = s.option(form.Value, 'min_steps', _('Fewest steps'), _('The smallest purchase, in steps. A token worth less is refused before it is redeemed, so the customer keeps it.'));
		o.placeholder = '1';
		o.validate = validSats(1);

		o = s.option(form.Value, 'max_balance', _('Most held (sat)'),
			_('Ecash is like cash in the till: anyone who takes the router could spend it. The router stops taking Cashu once it holds this much, so a stolen or broken router loses at most this. A payout makes room again once the mint confirms it.'));
		o.placeholder = '50000';
		o.validate = validSats(1);

		o = s.option(form.Value, 'payout_address', _('Payout address'),
			_('Your Lightning address (like name@wallet.com, from your Lightning wallet) or an LNURL. The router sends what it holds there: by itself once a mint holds the amount below, or now with "Pay out now". The mint keeps a small fee for the Lightning payment (shown with each payout); what it does not use comes back.'));
		o.placeholder = 'name@wallet.example';
		o.validate = function(section_id, value) {
			if (value === '' || value == null)
				return true;
			return (ADDRESS_RE.test(value) || LNURL_RE.test(value)) ? true : _('A Lightning address (name@host) or an LNURL (lnurl1…)');
		};

		o = s.option(form.Value, 'payout_min', _('Pay out from (sat)'),
			_('A mint\'s ecash is paid out once it reaches this. Larger payouts keep the fee small beside what is paid.'));
		o.placeholder = '5000';
		o.validate = validSats(1);

		return m.render().then(L.bind(function(node) {
			return E([], [
				E('h2', title),
				E('div', { 'class': 'cbi-map-descr' }, intro),
				E('div', { 'class': 'cbi-section' }, [
					E('h3', _('Ecash held')),
					E('p', { 'class': 'cbi-section-descr' }, _('What customers paid with Cashu and the router holds, per mint. A payout sends it to your Lightning address; if a payout is under way it shows here until the mint has paid (it is never paid twice).')),
					this.balanceBox
				]),
				node
			]);
		}, this));
	}
});
