'use strict';
'require view';
'require dom';
'require poll';
'require ui';
'require sluice.common as common';

/* Grant and extend units: seconds or bytes per unit (bytes as the binary multiples LuCI prints). */
var UNITS = [
	[ 'min', 'seconds', 60, _('minutes'), _('minute') ],
	[ 'h', 'seconds', 3600, _('hours'), _('hour') ],
	[ 'd', 'seconds', 86400, _('days'), _('day') ],
	[ 'MiB', 'bytes', 1048576, _('MiB'), _('MiB') ],
	[ 'GiB', 'bytes', 1073741824, _('GiB'), _('GiB') ]
];

/* Filter → the `state` argument of `sessions` (the daemon filters and pages; thousands of sessions stay cheap). */
var FILTERS = [
	[ 'live', _('Active and pending'), 'LIVE' ],
	[ 'ended', _('Ended'), 'ENDED' ],
	[ 'all', _('All'), null ]
];

/* Rows per page (the daemon's default page size; at most 500). */
var PAGE = 100;

/* Seconds Start, Stop and Restart are followed before the page says they did not take. */
var SERVICE_TRIES = 20;

function notify(text, kind) {
	return ui.addNotification(null, E('p', text), kind || 'info');
}

/* The daemon's refusals say "sluice: …"; this page's own checks speak for themselves. */
function failure(err) {
	notify(common.errorText(err), 'danger');
}

/* A MAC as the daemon takes it (aa:bb:cc:dd:ee:ff or with dashes), lower case with colons; null if it is not one. */
function macOrNull(text) {
	text = String(text || '').trim();
	return /^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$/.test(text) ? text.toLowerCase().replace(/-/g, ':') : null;
}

function dismiss(node) {
	if (node && node.parentNode)
		node.parentNode.removeChild(node);
}

function isLive(s) {
	return s.state === 'ACTIVE' || s.state === 'PENDING';
}

/* "1 hours" → "1 h" style text for a granted amount. */
/* Whether a time session's clock is still where the purchase put it: started_at is the purchase's and the deadline
 * is start + allotment (the daemon moves both when the gate opens; seconds, so allow the deadline's rounding). */
function clockNotStarted(s) {
	return s.started_at != null && Number(s.started_at) === Number(s.created_at)
		&& Math.abs(Number(s.expires_at) - Number(s.started_at) - Number(s.allotment)) <= 1;
}

/* "1 hour", "2 hours" (a notice said "1 hours"). */
function unitText(count, unit) {
	return count + ' ' + (Number(count) === 1 ? unit[4] : unit[3]);
}

function unitSelect(name, metric) {
	return E('select', { 'class': 'cbi-input-select', 'name': name },
		UNITS.filter(function(u) { return !metric || u[1] === metric; })
			.map(function(u) { return E('option', { 'value': u[0] }, u[3]); }));
}

/* What was paid for a session: granted, or paid_total (every payment; `payments` lists only the first and latest few)
 * priced by common.paidPlan; with no plan to price it, the raw amount says it is in the asset's smallest units instead
 * of passing for a price. */
function paid(s, plans) {
	var payments = Array.isArray(s.payments) ? s.payments : [];
	if (payments.length === 0)
		return '-';
	if (payments.every(function(p) { return p.method === 'grant'; }) && (s.paid_total == null || s.paid_total === '0'))
		return _('Granted');
	var total = /^\d+$/.test(s.paid_total || '') ? s.paid_total : '0';
	var plan = common.paidPlan(s, plans);
	if (plan)
		return common.price(total, plan.decimals, plan.currency || '');
	return E('span', { 'title': common.paidAssets(s)[0] || '' }, _('%s units').format(total));
}

return view.extend({
	handleSave: null,
	handleSaveApply: null,
	handleReset: null,

	filter: 'live',
	offset: 0,
	plans: {},

	/* Never rejects: with the daemon down the page still renders and says so. */
	load: function() {
		var f = FILTERS.filter(L.bind(function(x) { return x[0] === this.filter; }, this))[0] || FILTERS[0];
		return Promise.all([
			common.sessions(f[2] || undefined, this.offset || 0, PAGE).catch(function(e) { return e; }),
			common.stats().catch(function(e) { return e; }),
			common.pricing().catch(function() { return null; }),
			common.service(),
			common.liveCounts().catch(function() { return null; })
		]);
	},

	/* Start, Stop and Restart end in a state the page has seen (rc and the daemon asked until then), and say which. */
	handleService: function(action, ev) {
		var labels = { start: _('Starting'), stop: _('Stopping'), restart: _('Restarting'), reload: _('Reloading') };
		var busy = notify(_('%s sluice…').format(labels[action]));
		var done = action === 'reload'
			? common.reload().then(function(r) {
				if (r && r.restart_required && r.restart_required.length)
					notify(_('Reloaded. These options apply only after a restart: %s').format(r.restart_required.join(', ')), 'warning');
				else
					notify(_('Reloaded.'));
			  })
			: common.serviceAction(action).then(function() {
				return common.awaitService(action, SERVICE_TRIES);
			  }).then(function(state) {
				if (state.confirmed)
					notify(action === 'stop' ? _('sluice stopped.') : _('sluice is running.'));
				else if (action === 'stop')
					notify(_('sluice is still running %d s after Stop.').format(SERVICE_TRIES), 'danger');
				else
					notify(state.running ? _('sluice runs but does not answer %d s after Start (see logread -e sluice).').format(SERVICE_TRIES)
						: _('sluice is not running %d s after Start (see logread -e sluice).').format(SERVICE_TRIES), 'danger');
			  });
		return done.catch(failure).then(function() { dismiss(busy); }).then(L.bind(this.refresh, this));
	},

	handleDisconnect: function(s, ev) {
		var self = this;
		ui.showModal(_('Disconnect %s?').format(s.mac), [
			E('p', _('The session ends now and the device loses access; what is left of it is not refunded.')),
			E('div', { 'class': 'right' }, [
				E('button', { 'class': 'btn', 'click': ui.hideModal }, _('Cancel')),
				' ',
				E('button', {
					'class': 'btn cbi-button-negative',
					'click': ui.createHandlerFn(self, function() {
						ui.hideModal();
						return common.terminate(s.mac).then(function() {
							notify(_('Disconnected %s').format(s.mac));
						}).catch(failure).then(L.bind(self.refresh, self));
					})
				}, _('Disconnect'))
			])
		]);
	},

	handleExtend: function(s, ev) {
		var self = this;
		var body = E('div', {}, [
			E('p', _('Adds to the session of %s without payment.').format(s.mac)),
			E('div', {}, [
				E('input', { 'class': 'cbi-input-text', 'name': 'extend_amount', 'type': 'number', 'min': '1', 'value': '1' }),
				' ',
				unitSelect('extend_unit', s.metric)
			])
		]);
		ui.showModal(_('Extend %s').format(s.mac), [
			body,
			E('div', { 'class': 'right' }, [
				E('button', { 'class': 'btn', 'click': ui.hideModal }, _('Cancel')),
				' ',
				E('button', {
					'class': 'btn cbi-button-apply',
					'click': ui.createHandlerFn(self, function() {
						var count = body.querySelector('[name="extend_amount"]').value.trim();
						var unitName = body.querySelector('[name="extend_unit"]').value;
						var unit = UNITS.filter(function(u) { return u[0] === unitName; })[0];
						if (!/^\d+$/.test(count) || Number(count) < 1 || !unit)
							return failure(new Error(_('Expecting a whole number of at least 1')));
						ui.hideModal();
						return common.extend(s.mac, unit[1], Number(count) * unit[2]).then(function() {
							notify(_('Added %s to the session of %s').format(unitText(count, unit), s.mac));
						}).catch(failure).then(L.bind(self.refresh, self));
					})
				}, _('Extend'))
			])
		]);
	},

	handleMove: function(s, ev) {
		var self = this;
		var body = E('div', {}, [
			E('p', _('The session of %s, with what is left of it, goes to another device; %s loses access.').format(s.mac, s.mac)),
			E('input', { 'class': 'cbi-input-text', 'name': 'move_to', 'placeholder': 'aa:bb:cc:dd:ee:ff' })
		]);
		ui.showModal(_('Move %s to another MAC').format(s.mac), [
			body,
			E('div', { 'class': 'right' }, [
				E('button', { 'class': 'btn', 'click': ui.hideModal }, _('Cancel')),
				' ',
				E('button', {
					'class': 'btn cbi-button-apply',
					'click': ui.createHandlerFn(self, function() {
						var to = macOrNull(body.querySelector('[name="move_to"]').value);
						if (to === null)
							return failure(new Error(_('Expecting a MAC address like aa:bb:cc:dd:ee:ff')));
						ui.hideModal();
						return common.move(s.id, to).then(function(r) {
							notify(r && r.gate === 'pending'
								? _('Moved the session of %s to %s; gate pending: %s is not on the portal yet.').format(s.mac, to, to)
								: _('Moved the session of %s to %s').format(s.mac, to), r && r.gate === 'pending' ? 'warning' : 'info');
						}).catch(failure).then(L.bind(self.refresh, self));
					})
				}, _('Move'))
			])
		]);
	},

	handleRemoveDevice: function(s, mac, ev) {
		var self = this;
		ui.showModal(_('Remove %s from the session?').format(mac), [
			E('p', _('%s loses access; the session of %s goes on and the place is free for another device.').format(mac, s.mac)),
			E('div', { 'class': 'right' }, [
				E('button', { 'class': 'btn', 'click': ui.hideModal }, _('Cancel')),
				' ',
				E('button', {
					'class': 'btn cbi-button-negative',
					'click': ui.createHandlerFn(self, function() {
						ui.hideModal();
						return common.removeDevice(mac).then(function() {
							notify(_('Removed %s from the session of %s').format(mac, s.mac));
						}).catch(failure).then(L.bind(self.refresh, self));
					})
				}, _('Remove'))
			])
		]);
	},

	handleGrant: function(ev) {
		var form = dom.parent(ev.currentTarget, '.cbi-section');
		var mac = form.querySelector('[name="grant_mac"]').value.trim();
		var count = form.querySelector('[name="grant_amount"]').value.trim();
		var unitName = form.querySelector('[name="grant_unit"]').value;
		var unit = UNITS.filter(function(u) { return u[0] === unitName; })[0];

		if (!/^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$/.test(mac))
			return failure(new Error(_('Expecting a MAC address like aa:bb:cc:dd:ee:ff')));
		if (!/^\d+$/.test(count) || Number(count) < 1 || !unit)
			return failure(new Error(_('Expecting a whole number of at least 1')));

		mac = mac.toLowerCase().replace(/-/g, ':');
		return common.grant(mac, unit[1], Number(count) * unit[2]).then(function(r) {
			var what = unitText(count, unit);
			if (r.topped_up)
				notify(_('Added %s to the session of %s').format(what, mac));
			else if (r.gate === 'pending')
				notify(_('Gate pending: %s is not on the portal yet. Granted %s, counted from when it joins.').format(mac, what), 'warning');
			else
				notify(_('Granted %s to %s').format(what, mac));
		}).catch(failure).then(L.bind(this.refresh, this));
	},

	handleFilter: function(ev) {
		this.filter = ev.currentTarget.value;
		this.offset = 0;
		return this.refresh();
	},

	handlePage: function(step, ev) {
		this.offset = Math.max(0, (this.offset || 0) + step * PAGE);
		return this.refresh();
	},

	refresh: function() {
		return this.load().then(L.bind(this.update, this));
	},

	update: function(data) {
		var sessions = data[0], stats = data[1], pricing = data[2], service = data[3], live = data[4];
		var up = !(stats instanceof Error);
		if (pricing && Array.isArray(pricing.plans)) {
			var plans = {};
			pricing.plans.forEach(function(p) { plans[p.id] = p; });
			this.plans = plans;
		}
		this.updateStatus(up ? stats : null, service, up ? null : stats, live);
		if (sessions instanceof Error || !sessions || !Array.isArray(sessions.sessions)) {
			cbi_update_table(this.table, [], E('em', up ? _('Cannot list sessions: %s').format(sessions && sessions.message) : _('sluice is not running.')));
			this.updatePager(null);
			return;
		}
		/* Sessions ended since the last refresh can leave this page past the end: go back to the last page. */
		if (sessions.sessions.length === 0 && sessions.total > 0 && this.offset > 0) {
			this.offset = Math.floor((sessions.total - 1) / PAGE) * PAGE;
			return this.refresh();
		}
		this.updateTable(sessions.sessions);
		this.updatePager(sessions);
	},

	updateStatus: function(stats, service, error, live) {
		var writable = common.writable();
		var running = stats != null;
		var rows = [
			[ _('Service'), running ? _('Running') : (service && service.running ? _('Starting or not answering') : _('Not running')) ]
		];
		if (running) {
			var s = stats.sessions || {}, m = stats.meter || {};
			rows.push([ _('Uptime'), '%t'.format(stats.uptime_s || 0) ]);
			rows.push([ _('Portal'), (m.flavour && m.flavour !== 'unknown' ? m.flavour : _('not answering yet')) +
				' · ' + _('%d clients seen').format(m.clients || 0) ]);
			/* gate-pending sessions are ACTIVE to the daemon's counters, not to the admin: counted apart from the list */
			var c = live || { active: s.active || 0, gatePending: 0, pending: s.pending || 0 };
			rows.push([ _('Sessions'), _('%d active, %d gate pending, %d pending, %d ended (kept)').format(c.active, c.gatePending, c.pending, s.retainedEnded || 0) ]);
			rows.push([ _('Last usage poll'), _('%s ms').format(m.tick_ms_last != null ? Math.round(m.tick_ms_last) : '-') ]);
			var trials = common.trialsText(stats);
			if (trials)
				rows.push([ _('Free trials'), trials ]);
		}
		else if (error && error.code != null && !/Object not found/.test(error.message || '')) {
			/* reachable but failing (not merely stopped): the daemon's own words, without LuCI's stack text */
			rows.push([ _('Error'), String(error.message).replace(/ at .*$/s, '') ]);
		}

		var notices = [];
		if (running && Array.isArray(stats.restart_required) && stats.restart_required.length)
			notices.push(E('div', { 'class': 'alert-message warning' }, [
				E('p', _('Changed settings that apply only after a restart: %s').format(stats.restart_required.join(', '))),
				writable ? E('button', { 'class': 'btn cbi-button-action', 'click': ui.createHandlerFn(this, 'handleService', 'restart') }, _('Restart now')) : ''
			]));
		if (running && Array.isArray(stats.config_problems) && stats.config_problems.length)
			notices.push(E('div', { 'class': 'alert-message warning' }, [
				E('p', _('sluice runs without these settings of /etc/config/sluice:')),
				E('ul', {}, stats.config_problems.map(function(p) {
					return E('li', '%s: %s (%s)'.format(p.path, p.reason, p.effect || ''));
				}))
			]));

		var buttons = writable ? E('div', { 'class': 'cbi-page-actions' }, [
			E('button', { 'class': 'btn cbi-button-apply', 'disabled': running ? '' : null, 'click': ui.createHandlerFn(this, 'handleService', 'start') }, _('Start')),
			' ',
			E('button', { 'class': 'btn cbi-button-negative', 'disabled': running ? null : '', 'click': ui.createHandlerFn(this, 'handleService', 'stop') }, _('Stop')),
			' ',
			E('button', { 'class': 'btn cbi-button-action', 'click': ui.createHandlerFn(this, 'handleService', 'restart') }, _('Restart')),
			' ',
			E('button', { 'class': 'btn cbi-button-action', 'disabled': running ? null : '', 'click': ui.createHandlerFn(this, 'handleService', 'reload') }, _('Reload'))
		]) : '';

		/* dom.content takes one level of nodes: no nested arrays */
		dom.content(this.status, [
			E('table', { 'class': 'table', 'id': 'sluice_status' }, rows.map(function(r) {
				return E('tr', { 'class': 'tr' }, [ E('td', { 'class': 'td left', 'width': '33%' }, r[0]), E('td', { 'class': 'td left' }, r[1]) ]);
			}))
		].concat(notices, [ buttons ]));
	},

	updatePager: function(page) {
		if (!page || page.total <= page.sessions.length) {
			dom.content(this.pager, '');
			return;
		}
		var first = page.offset + 1, last = page.offset + page.sessions.length;
		dom.content(this.pager, [
			E('button', { 'class': 'btn', 'disabled': page.offset > 0 ? null : '', 'click': ui.createHandlerFn(this, 'handlePage', -1) }, _('« Previous')),
			' ',
			E('span', {}, _('%d–%d of %d').format(first, last, page.total)),
			' ',
			E('button', { 'class': 'btn', 'disabled': page.more ? null : '', 'click': ui.createHandlerFn(this, 'handlePage', 1) }, _('Next »'))
		]);
	},

	updateTable: function(list) {
		var writable = common.writable();
		var filter = this.filter, plans = this.plans;
		var rows = list.map(L.bind(function(s) {
			var live = isLive(s);
			/* A time session's clock starts when its gate opens (the daemon then moves its deadline by the wait): until
			 * then nothing is used and it has not got an end time yet, whatever the provisional figures say. */
			var waiting = common.gatePending(s) && s.metric === 'seconds' && clockNotStarted(s);
			var actions = (live && writable) ? [
				E('button', {
					'class': 'btn cbi-button-action',
					'click': ui.createHandlerFn(this, 'handleExtend', s),
					'title': _('Add time or data to this session')
				}, [ _('Extend') ]),
				' ',
				E('button', {
					'class': 'btn cbi-button-action',
					'click': ui.createHandlerFn(this, 'handleMove', s),
					'title': _('Give this session to another device (another MAC)')
				}, [ _('Move') ]),
				' ',
				E('button', {
					'class': 'btn cbi-button-remove',
					'click': ui.createHandlerFn(this, 'handleDisconnect', s),
					'title': _('End this session and close the portal for this device')
				}, [ _('Disconnect') ])
			] : [];
			/* Several devices per purchase, under the buyer's IP (a column of its own would push the table past 1400 px):
			 * how many of how many, each joined device (not the buyer's: Disconnect ends the session) with Remove. */
			var joined = Array.isArray(s.devices) ? s.devices.slice(1) : [];
			var devices = s.max_devices == null ? (s.ip || '-') : E('div', {}, [ s.ip || '-', E('br'),
				E('small', {}, _('%d of %d devices').format(joined.length + 1, s.max_devices)) ].concat(joined.map(L.bind(function(mac) {
				return E('div', { 'class': 'sluice-device' }, [ mac, (live && writable) ? ' ' : '', (live && writable) ? E('button', {
					'class': 'btn cbi-button-remove',
					'click': ui.createHandlerFn(this, 'handleRemoveDevice', s, mac),
					'title': _('Take this device out of the session')
				}, [ _('Remove') ]) : '' ]);
			}, this))));
			return [
				s.mac,
				devices,
				s.user || '-',
				(s.plan || _('grant')) + ' (' + common.metricName(s.metric) + ')',
				common.amount(s.metric, waiting ? 0 : s.used) + ' / ' + common.amount(s.metric, s.allotment),
				live ? common.amount(s.metric, waiting ? s.allotment : s.remaining) : '-',
				common.gatePending(s)
					? E('span', { 'title': _('Paid or granted, but the portal has not let the device through yet (it is not connected, or the portal is not answering); sluice retries every poll.') }, _('Gate pending'))
					: (s.end_cause ? E('span', {}, [ common.stateName(s.state), E('br'), E('small', {}, common.causeName(s.end_cause)) ]) : common.stateName(s.state)),
				/* start and end on two lines: one column instead of two keeps the table inside 1400 px */
				E('span', {}, [ common.timestamp(s.started_at), E('br'),
					waiting ? _('%s after it joins').format(common.amount(s.metric, s.allotment))
						: live ? common.timestamp(s.expires_at) : common.timestamp(s.ended_at) ]),
				paid(s, plans),
				/* three buttons side by side pushed the table past the page at 1400 px: they wrap in a narrow cell */
				E('div', { 'style': 'display:flex;flex-wrap:wrap;gap:2px;max-width:11em' }, actions)
			];
		}, this));
		cbi_update_table(this.table, rows, E('em', filter === 'ended' ? _('No ended sessions.') : _('No sessions.')));
	},

	render: function(data) {
		var writable = common.writable();
		this.status = E('div', { 'class': 'cbi-section', 'id': 'sluice_service' });
		this.pager = E('div', { 'class': 'cbi-page-actions', 'id': 'sluice_pager' });
		var table = this.table = E('table', { 'class': 'table', 'id': 'sluice_sessions' }, [
			E('tr', { 'class': 'tr table-titles' }, [
				E('th', { 'class': 'th' }, _('MAC')),
				E('th', { 'class': 'th' }, _('IP / devices')),
				E('th', { 'class': 'th' }, _('User')),
				E('th', { 'class': 'th' }, _('Plan')),
				E('th', { 'class': 'th' }, _('Used / allotment')),
				E('th', { 'class': 'th' }, _('Remaining')),
				E('th', { 'class': 'th' }, _('State')),
				E('th', { 'class': 'th' }, _('Started / ends')),
				E('th', { 'class': 'th' }, _('Paid')),
				E('th', { 'class': 'th cbi-section-actions' }, '')
			])
		]);

		var filter = E('div', { 'class': 'cbi-value' }, [
			E('label', { 'class': 'cbi-value-title' }, _('Show')),
			E('div', { 'class': 'cbi-value-field' },
				E('select', { 'class': 'cbi-input-select', 'name': 'sessions_filter', 'change': ui.createHandlerFn(this, 'handleFilter') },
					FILTERS.map(L.bind(function(f) { return E('option', { 'value': f[0], 'selected': f[0] === this.filter ? '' : null }, f[1]); }, this))))
		]);

		var grant = writable ? E('div', { 'class': 'cbi-section' }, [
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
					unitSelect('grant_unit')
				])
			]),
			E('div', { 'class': 'cbi-value' }, [
				E('div', { 'class': 'cbi-value-field' },
					E('button', { 'class': 'btn cbi-button-apply', 'click': ui.createHandlerFn(this, 'handleGrant') }, [ _('Grant') ]))
			])
		]) : '';

		var nodes = E([], [
			E('h2', _('Sluice sessions')),
			E('div', { 'class': 'cbi-map-descr' }, _('Sessions sold or granted on this router, refreshed every 5 seconds.')),
			this.status,
			E('div', { 'class': 'cbi-section' }, [ filter, table, this.pager ]),
			grant
		]);

		this.update(data);
		poll.add(L.bind(this.refresh, this), 5);
		return nodes;
	}
});
