'use strict';
'require view';
'require dom';
'require poll';
'require rpc';
'require ui';

var callSessions = rpc.declare({
	object: 'sluice',
	method: 'sessions',
	expect: { sessions: [] }
});

var callTerminate = rpc.declare({
	object: 'sluice',
	method: 'terminate',
	params: [ 'mac' ],
	reject: true
});

var callGrantSeconds = rpc.declare({
	object: 'sluice',
	method: 'grant',
	params: [ 'mac', 'seconds' ],
	reject: true
});

var callGrantBytes = rpc.declare({
	object: 'sluice',
	method: 'grant',
	params: [ 'mac', 'bytes' ],
	reject: true
});

/* Grant units: value in seconds or bytes per unit (bytes as the binary multiples LuCI prints). */
var GRANT_UNITS = [
	[ 'min', 'seconds', 60, _('minutes') ],
	[ 'h', 'seconds', 3600, _('hours') ],
	[ 'MiB', 'bytes', 1048576, _('MiB') ],
	[ 'GiB', 'bytes', 1073741824, _('GiB') ]
];

/* Bytes arrive as decimal strings (they may exceed 2^53 in principle); seconds as numbers. */
function amount(metric, value) {
	if (value == null || value === '')
		return '-';
	var n = Number(value);
	if (!isFinite(n))
		return String(value);
	return metric === 'bytes' ? '%1024.2mB'.format(n) : '%t'.format(Math.floor(n));
}

function timestamp(unixSeconds) {
	return unixSeconds ? new Date(unixSeconds * 1000).toLocaleString() : '-';
}

function failure(err) {
	ui.addNotification(null, E('p', _('sluice: %s').format(err && err.message ? err.message : String(err))), 'danger');
}

return view.extend({
	handleSave: null,
	handleSaveApply: null,
	handleReset: null,

	load: function() {
		return callSessions();
	},

	handleDisconnect: function(mac, ev) {
		var button = ev.currentTarget;
		dom.parent(button, '.tr').style.opacity = 0.5;
		button.classList.add('spinning');
		button.disabled = true;
		button.blur();
		return callTerminate(mac).catch(failure).then(L.bind(this.refresh, this));
	},

	handleGrant: function(ev) {
		var form = dom.parent(ev.currentTarget, '.cbi-section');
		var mac = form.querySelector('[name="grant_mac"]').value.trim();
		var count = form.querySelector('[name="grant_amount"]').value.trim();
		var unitName = form.querySelector('[name="grant_unit"]').value;
		var unit = GRANT_UNITS.filter(function(u) { return u[0] === unitName; })[0];

		if (!/^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$/.test(mac))
			return failure(new Error(_('Expecting a MAC address like aa:bb:cc:dd:ee:ff')));
		if (!/^\d+$/.test(count) || Number(count) < 1 || !unit)
			return failure(new Error(_('Expecting a whole number of at least 1')));

		var value = Number(count) * unit[2];
		var call = unit[1] === 'seconds' ? callGrantSeconds : callGrantBytes;
		return call(mac.toLowerCase().replace(/-/g, ':'), value).then(function() {
			ui.addNotification(null, E('p', _('Granted %s to %s').format(count + ' ' + unit[3], mac)), 'info');
		}).catch(failure).then(L.bind(this.refresh, this));
	},

	refresh: function() {
		return callSessions().then(L.bind(this.updateTable, this));
	},

	updateTable: function(sessions) {
		var list = Array.isArray(sessions) ? sessions : [];
		var rows = list.map(L.bind(function(s) {
			return [
				s.mac,
				s.user || '-',
				(s.plan || '-') + ' (' + (s.metric === 'bytes' ? _('data') : _('time')) + ')',
				amount(s.metric, s.used) + ' / ' + amount(s.metric, s.allotment),
				amount(s.metric, s.remaining),
				s.state,
				timestamp(s.started_at),
				E('button', {
					'class': 'btn cbi-button-remove',
					'click': L.bind(this.handleDisconnect, this, s.mac),
					'title': _('End this session and close the portal for this device')
				}, [ _('Disconnect') ])
			];
		}, this));
		cbi_update_table(this.table, rows, E('em', _('No sessions.')));
	},

	render: function(sessions) {
		var table = this.table = E('table', { 'class': 'table', 'id': 'sluice_sessions' }, [
			E('tr', { 'class': 'tr table-titles' }, [
				E('th', { 'class': 'th' }, _('MAC')),
				E('th', { 'class': 'th' }, _('User')),
				E('th', { 'class': 'th' }, _('Plan')),
				E('th', { 'class': 'th' }, _('Used / allotment')),
				E('th', { 'class': 'th' }, _('Remaining')),
				E('th', { 'class': 'th' }, _('State')),
				E('th', { 'class': 'th' }, _('Started')),
				E('th', { 'class': 'th cbi-section-actions' }, '')
			])
		]);

		var grant = E('div', { 'class': 'cbi-section' }, [
			E('h3', _('Grant free access')),
			E('p', { 'class': 'cbi-section-descr' },
				_('Opens the portal for a device without payment. A device with an active session of the same kind gets a top-up.')),
			E('div', { 'class': 'cbi-value' }, [
				E('label', { 'class': 'cbi-value-title' }, _('MAC address')),
				E('div', { 'class': 'cbi-value-field' },
					E('input', { 'class': 'cbi-input-text', 'name': 'grant_mac', 'placeholder': 'aa:bb:cc:dd:ee:ff' }))
			]),
			E('div', { 'class': 'cbi-value' }, [
				E('label', { 'class': 'cbi-value-title' }, _('Amount')),
				E('div', { 'class': 'cbi-value-field' }, [
					E('input', { 'class': 'cbi-input-text', 'name': 'grant_amount', 'type': 'number', 'min': '1', 'value': '1' }),
					' ',
					E('select', { 'class': 'cbi-input-select', 'name': 'grant_unit' },
						GRANT_UNITS.map(function(u) { return E('option', { 'value': u[0] }, u[3]); }))
				])
			]),
			E('div', { 'class': 'cbi-value' }, [
				E('div', { 'class': 'cbi-value-field' },
					E('button', { 'class': 'btn cbi-button-apply', 'click': ui.createHandlerFn(this, 'handleGrant') }, [ _('Grant') ]))
			])
		]);

		var nodes = E([], [
			E('h2', _('Sluice sessions')),
			E('div', { 'class': 'cbi-map-descr' }, _('Sessions sold or granted on this router, refreshed every 5 seconds.')),
			E('div', { 'class': 'cbi-section' }, [ table ]),
			grant
		]);

		this.updateTable(sessions);
		poll.add(L.bind(this.refresh, this), 5);
		return nodes;
	}
});
