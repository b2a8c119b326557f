/*
 * sluice's pay page (served by the LAN x402 endpoint at /portal; openNDS's splash links here). Plain browser JS, no
 * library: the plans come from GET /, a browser wallet (window.ethereum, EIP-1193) signs the x402 `exact` payment
 * (an EIP-3009 transferWithAuthorization as EIP-712 typed data, eth_signTypedData_v4), and GET /buy carries it in
 * PAYMENT-SIGNATURE, as any x402 v2 client would. A voucher goes to POST /voucher.
 * The pure part (SluicePortal.*) is what test/http/portal.test.ts runs against a real daemon; the DOM part runs only
 * in a browser.
 */
(function(root) {
	'use strict';

	/* value ÷ 10^decimals with every digit kept: ("250000", 6) → "0.25". */
	function formatUnits(value, decimals) {
		var s = String(value).replace(/^0+(?=\d)/, '');
		var d = Number(decimals) || 0;
		if (!/^\d+$/.test(s) || d === 0)
			return s;
		if (s.length <= d)
			s = new Array(d - s.length + 2).join('0') + s;
		var whole = s.slice(0, s.length - d), frac = s.slice(s.length - d).replace(/0+$/, '');
		return frac ? whole + '.' + frac : whole;
	}

	function price(value, plan) {
		return formatUnits(value, plan.decimals) + (plan.currency ? ' ' + plan.currency : '');
	}

	/* "3600" seconds → "1 h"; "1073741824" bytes → "1 GiB": the largest unit that divides the amount. */
	function amountText(metric, value) {
		var n = Number(value);
		var units = metric === 'bytes'
			? [ [ 1099511627776, 'TiB' ], [ 1073741824, 'GiB' ], [ 1048576, 'MiB' ], [ 1024, 'KiB' ], [ 1, 'B' ] ]
			: [ [ 86400, 'd' ], [ 3600, 'h' ], [ 60, 'min' ], [ 1, 's' ] ];
		for (var i = 0; i < units.length; i++)
			if (n >= units[i][0] && n % units[i][0] === 0)
				return (n / units[i][0]) + ' ' + units[i][1];
		return value + (metric === 'bytes' ? ' B' : ' s');
	}

	/* What is left, rounded for reading: "1 h 59 min", "12 min", "1.5 GiB", "300 MiB". */
	function leftText(metric, value) {
		var n = Number(value);
		if (metric === 'bytes') {
			var units = [ [ 1099511627776, 'TiB' ], [ 1073741824, 'GiB' ], [ 1048576, 'MiB' ], [ 1024, 'KiB' ] ];
			for (var i = 0; i < units.length; i++)
				if (n >= units[i][0])
					return (Math.floor(n / units[i][0] * 10) / 10) + ' ' + units[i][1];
			return n + ' B';
		}
		var d = Math.floor(n / 86400), h = Math.floor(n % 86400 / 3600), m = Math.floor(n % 3600 / 60);
		if (d > 0)
			return d + ' d' + (h ? ' ' + h + ' h' : '');
		if (h > 0)
			return h + ' h' + (m ? ' ' + m + ' min' : '');
		return m > 0 ? m + ' min' : n + ' s';
	}

	/* What a plan card shows; `payable` when the endpoint offered an x402 payment for it. */
	function planView(plan) {
		var minSteps = Number(plan.min_steps) || 1, maxSteps = Number(plan.max_steps) || minSteps;
		return {
			id: plan.id,
			title: (plan.metric === 'bytes' ? 'Data' : 'Time') + ': ' + plan.id,
			priceText: price(plan.price_per_step, plan) + ' per ' + amountText(plan.metric, plan.step_size),
			minSteps: minSteps,
			maxSteps: maxSteps,
			payable: !!(plan.x402 && plan.x402.scheme === 'exact')
		};
	}

	/* "You get 2 h for 0.5 USDC" for `steps` steps of a plan. */
	function totalText(plan, steps) {
		var allotment = (BigInt(plan.step_size) * BigInt(steps)).toString();
		var total = (BigInt(plan.price_per_step) * BigInt(steps)).toString();
		return amountText(plan.metric, allotment) + ' for ' + price(total, plan);
	}

	/* "eip155:84532" → 84532. */
	function chainIdOf(network) {
		var m = /^eip155:(\d+)$/.exec(String(network));
		if (!m)
			throw new Error('this router sells on ' + network + ', which a browser wallet cannot pay');
		return Number(m[1]);
	}

	/*
	 * The EIP-712 typed data of the EIP-3009 authorization a PAYMENT-REQUIRED offer asks for, as eth_signTypedData_v4
	 * takes it. Valid from 10 minutes ago (clock skew) until maxTimeoutSeconds from now, as x402's own clients do.
	 */
	function typedData(req, from, nonce, nowSeconds) {
		var validBefore = nowSeconds + (Number(req.maxTimeoutSeconds) || 60);
		return {
			types: {
				EIP712Domain: [
					{ name: 'name', type: 'string' }, { name: 'version', type: 'string' },
					{ name: 'chainId', type: 'uint256' }, { name: 'verifyingContract', type: 'address' }
				],
				TransferWithAuthorization: [
					{ name: 'from', type: 'address' }, { name: 'to', type: 'address' }, { name: 'value', type: 'uint256' },
					{ name: 'validAfter', type: 'uint256' }, { name: 'validBefore', type: 'uint256' }, { name: 'nonce', type: 'bytes32' }
				]
			},
			primaryType: 'TransferWithAuthorization',
			domain: {
				name: req.extra && req.extra.name, version: req.extra && req.extra.version,
				chainId: chainIdOf(req.network), verifyingContract: req.asset
			},
			message: {
				from: from, to: req.payTo, value: String(req.amount),
				validAfter: String(nowSeconds - 600), validBefore: String(validBefore), nonce: nonce
			}
		};
	}

	/* The x402 v2 PaymentPayload for a signed authorization. */
	function paymentPayload(req, resource, data, signature) {
		return {
			x402Version: 2,
			resource: resource,
			accepted: req,
			payload: { signature: signature, authorization: data.message }
		};
	}

	/* base64 of the payload's UTF-8 JSON: the PAYMENT-SIGNATURE header value. */
	function encodeHeader(obj, btoaFn) {
		var utf8 = unescape(encodeURIComponent(JSON.stringify(obj)));
		return (btoaFn || root.btoa)(utf8);
	}

	/* 32 random bytes as 0x-hex: the authorization's nonce. */
	function randomNonce(cryptoObj) {
		var bytes = new Uint8Array(32);
		(cryptoObj || root.crypto).getRandomValues(bytes);
		return '0x' + Array.prototype.map.call(bytes, function(b) { return (b < 16 ? '0' : '') + b.toString(16); }).join('');
	}

	/* The daemon's words for a failed request: {error: {code, message}}, or an x402 402 body's `error`. */
	function errorText(status, body) {
		if (body && body.error && typeof body.error === 'object')
			return body.error.message || body.error.code;
		if (body && typeof body.error === 'string')
			return body.error.replace(/^ERR_[A-Z0-9_]+: /, '');
		return 'the router answered HTTP ' + status;
	}

	function sessionText(s) {
		var state = { PENDING: 'waiting to start', ACTIVE: 'active', EXPIRED: 'used up', TERMINATED: 'ended' }[s.state] || s.state;
		var text = 'Your access is ' + state;
		if (s.state === 'ACTIVE' || s.state === 'PENDING')
			text += ': ' + leftText(s.metric, s.remaining) + ' left of ' + amountText(s.metric, s.allotment);
		return text + '.';
	}

	var api = {
		formatUnits: formatUnits, amountText: amountText, leftText: leftText, planView: planView, totalText: totalText, chainIdOf: chainIdOf,
		typedData: typedData, paymentPayload: paymentPayload, encodeHeader: encodeHeader, randomNonce: randomNonce,
		errorText: errorText, sessionText: sessionText
	};
	root.SluicePortal = api;

	if (typeof document === 'undefined')
		return;

	/* ---- the page ---- */

	function $(id) { return document.getElementById(id); }

	function say(text, kind) {
		var m = $('message');
		m.textContent = text;
		m.className = kind || 'info';
	}

	function getJson(path, init) {
		return fetch(path, init || {}).then(function(res) {
			return res.text().then(function(text) {
				var body = null;
				try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
				return { status: res.status, body: body };
			});
		});
	}

	function showSession() {
		return getJson('/session').then(function(r) {
			var box = $('session');
			if (r.status === 200 && r.body && r.body.session) {
				box.textContent = sessionText(r.body.session);
				box.hidden = false;
			}
			else
				box.hidden = true;
		}).catch(function() {});
	}

	function done(r) {
		var s = r.body.session;
		say(r.body.gate === 'pending'
			? 'Paid. Your access starts as soon as the router lets your device through (a few seconds).'
			: 'Paid. You are online: ' + amountText(s.metric, s.allotment) + '.', 'ok');
		return showSession();
	}

	function pay(plan, steps) {
		var eth = root.ethereum, offer, from;
		if (!eth)
			return Promise.reject(new Error('no browser wallet on this page'));
		var path = '/buy?plan=' + encodeURIComponent(plan.id) + '&steps=' + encodeURIComponent(String(steps));
		say('Asking the router for the price…');
		return getJson(path).then(function(r) {
			if (r.status !== 402 || !r.body || !r.body.accepts || !r.body.accepts[0])
				throw new Error(errorText(r.status, r.body));
			offer = r.body;
			say('Confirm the payment in your wallet…');
			return eth.request({ method: 'eth_requestAccounts' });
		}).then(function(accounts) {
			from = accounts[0];
			return eth.request({ method: 'eth_chainId' });
		}).then(function(chainHex) {
			var want = chainIdOf(offer.accepts[0].network);
			if (parseInt(chainHex, 16) === want)
				return null;
			return eth.request({ method: 'wallet_switchEthereumChain', params: [ { chainId: '0x' + want.toString(16) } ] });
		}).then(function() {
			var req = offer.accepts[0];
			var data = typedData(req, from, randomNonce(), Math.floor(Date.now() / 1000));
			return eth.request({ method: 'eth_signTypedData_v4', params: [ from, JSON.stringify(data) ] }).then(function(signature) {
				say('Paying…');
				var header = encodeHeader(paymentPayload(req, offer.resource, data, signature));
				return getJson(path, { headers: { 'PAYMENT-SIGNATURE': header } });
			});
		}).then(function(r) {
			if (r.status !== 200)
				throw new Error(errorText(r.status, r.body));
			return done(r);
		});
	}

	function planCard(plan) {
		var v = planView(plan);
		var steps = document.createElement('input');
		steps.type = 'number';
		steps.className = 'steps';
		steps.min = String(v.minSteps);
		steps.max = String(v.maxSteps);
		steps.value = String(v.minSteps);
		var total = document.createElement('div');
		total.className = 'total';
		var button = document.createElement('button');
		button.textContent = 'Pay with wallet';
		button.disabled = !v.payable || !root.ethereum;
		function update() {
			var n = Number(steps.value);
			var ok = Math.floor(n) === n && n >= v.minSteps && n <= v.maxSteps;
			total.textContent = ok ? totalText(plan, n) : 'Choose ' + v.minSteps + ' to ' + v.maxSteps;
			button.disabled = !ok || !v.payable || !root.ethereum;
		}
		steps.addEventListener('input', update);
		button.addEventListener('click', function() {
			button.disabled = true;
			pay(plan, Number(steps.value)).catch(function(e) {
				say('Not paid: ' + (e && e.message ? e.message : String(e)), 'error');
			}).then(update);
		});
		update();

		var card = document.createElement('div');
		card.className = 'card plan';
		card.setAttribute('data-plan', v.id);
		var title = document.createElement('div');
		title.className = 'plan-title';
		title.textContent = v.title;
		var priceLine = document.createElement('div');
		priceLine.className = 'plan-price';
		priceLine.textContent = v.priceText + (v.payable ? '' : ' (not sold for crypto here)');
		var label = document.createElement('label');
		label.textContent = 'How many';
		var row = document.createElement('div');
		row.className = 'row';
		var left = document.createElement('div');
		left.appendChild(label);
		left.appendChild(steps);
		row.appendChild(left);
		row.appendChild(total);
		card.appendChild(title);
		card.appendChild(priceLine);
		card.appendChild(row);
		card.appendChild(button);
		return card;
	}

	function start() {
		$('page-url').textContent = root.location.href;
		$('wallet-hint').hidden = !!root.ethereum;
		// One key per voucher typed: sending the same one again (a lost answer, a second click) is refused as a replay
		// by the router instead of buying twice.
		var voucherKey = null, voucherKeyFor = null;
		$('voucher').addEventListener('submit', function(ev) {
			ev.preventDefault();
			var code = $('voucher-code').value.trim(), password = $('voucher-password').value;
			if (voucherKeyFor !== code + '\n' + password) {
				voucherKeyFor = code + '\n' + password;
				voucherKey = 'v-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 12);
			}
			var body = { code: code, idempotency_key: voucherKey };
			if (password)
				body.password = password;
			say('Checking the voucher…');
			getJson('/voucher', {
				method: 'POST', headers: { 'Content-Type': 'application/json' },
				body: JSON.stringify(body)
			}).then(function(r) {
				if (r.status === 501)
					throw new Error('this router does not take vouchers');
				if (r.status !== 200)
					throw new Error(errorText(r.status, r.body));
				return done(r);
			}).catch(function(e) {
				say('Voucher not accepted: ' + e.message, 'error');
			});
		});
		getJson('/').then(function(r) {
			if (r.status !== 200 || !r.body || !Array.isArray(r.body.plans))
				throw new Error(errorText(r.status, r.body));
			var box = $('plans');
			r.body.plans.forEach(function(p) { box.appendChild(planCard(p)); });
			say(r.body.plans.length ? 'Choose a plan.' : 'Nothing is for sale right now.', 'info');
		}).catch(function(e) {
			say('Cannot load the plans: ' + e.message, 'error');
		});
		showSession();
	}

	if (document.readyState === 'loading')
		document.addEventListener('DOMContentLoaded', start);
	else
		start();
})(typeof window !== 'undefined' ? window : globalThis);
