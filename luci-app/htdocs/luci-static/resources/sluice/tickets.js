'use strict';
'require baseclass';
'require sluice.common as common';

/*
 * Printed vouchers as the Vouchers page (admin) and the Counter page (staff) print them: a sheet of tickets, each with
 * its code, what it buys and a QR code that opens the pay page with the code filled in, drawn by the pay page's own
 * encoder (/usr/share/sluice/portal/qr.js, read through rpcd: no CDN, no copy of it here). Where the pay page is
 * comes from the daemon (voucher_list's `pay_page`), so neither page reads the config for it.
 */

function esc(s) {
	return String(s).replace(/[&<>"']/g, function(c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]; });
}

/* What one ticket (or one step) buys, as the staff say it: "2 h", "1 h 30 min", "1 day", "500 MB", "1 GiB". */
function buys(metric, allotment) {
	return metric === 'bytes' ? common.size(String(allotment)) : common.duration(allotment);
}

/* The pay page's encoder, run on its own (it sets SluiceQr on the object it is given); null when it cannot be read. */
function qrEncoder(text) {
	if (!text)
		return null;
	try {
		var holder = {};
		new Function('window', 'globalThis', text)(holder, holder);
		return holder.SluiceQr || null;
	}
	catch (e) {
		return null;
	}
}

/* voucher_list's `pay_page`: the pay page's URL, empty while the LAN endpoint is off (null: not known). */
function payPage(list) {
	return list && typeof list.pay_page === 'string' && list.pay_page !== '' ? list.pay_page : null;
}

/* A batch's price as the counter says it ("2.50 EUR"); '' for a batch without one. */
function priceText(price) {
	return price && price.currency ? common.price(String(price.amount), price.decimals, price.currency) : '';
}

/* What a ticket costs, typed at the counter ("2.50", "2,50", "3"): the amount in cents (the page prices with two
 * decimals), or null when it is not a price. */
function priceUnits(text) {
	var m = /^(\d{1,12})(?:[.,](\d{1,2}))?$/.exec(String(text).trim());
	return m ? (BigInt(m[1]) * BigInt(100) + BigInt((m[2] || '').padEnd(2, '0'))).toString() : null;
}

/* A batch's price as typed beside its currency: { amount (cents), currency }, both undefined for none (empty, or 0.00),
 * or { error } saying what to type. */
function typedPrice(price, currency) {
	if (price === '')
		return {};
	var cents = priceUnits(price);
	if (cents === null)
		return { error: _('Price: an amount such as 2.50 (two decimals at most).') };
	if (cents === '0')
		return {};
	currency = currency.toUpperCase();
	if (!/^[A-Z][A-Z0-9]{0,11}$/.test(currency))
		return { error: _('A price needs its currency, such as EUR.') };
	return { amount: cents, currency: currency };
}

/* The sheet: one ticket per cell, cut along the dashed lines; printed from a window of its own. False: the browser
 * blocked the window. */
function printSheet(made, planTitle, qr, base) {
	var tickets = made.codes.map(function(code) {
		var link = base ? base + (base.indexOf('?') < 0 ? '?' : '&') + 'voucher=' + encodeURIComponent(code) : null;
		var img = '';
		if (link && qr) {
			try { img = '<img alt="" src="data:image/svg+xml,' + encodeURIComponent(qr.svg(qr.encode(link, 'M'), 2)) + '">'; }
			catch (e) { img = ''; }
		}
		var cost = priceText(made.price);
		return '<div class="t">' + img + '<div><div class="what">' + esc(planTitle) + ' · ' + esc(buys(made.metric, made.allotment)) + (cost ? ' · ' + esc(cost) : '') + '</div>'
			+ '<div class="code">' + esc(code) + '</div>'
			+ (link ? '<div class="how">' + esc(_('Join the WiFi, then scan the code or open %s').format(base)) + '</div>' : '')
			+ (made.expires ? '<div class="how">' + esc(_('Valid until %s').format(new Date(made.expires * 1000).toLocaleDateString())) + '</div>' : '')
			+ '<div class="batch">' + esc(made.batch) + '</div></div></div>';
	}).join('');
	var html = '<!DOCTYPE html><html><head><meta charset="utf-8"><title>' + esc(_('WiFi vouchers')) + ' ' + esc(made.batch) + '</title><style>'
		+ 'body{font-family:sans-serif;margin:8mm}.g{display:grid;grid-template-columns:repeat(2,1fr);gap:0}'
		+ '.t{display:flex;gap:4mm;align-items:center;border:1px dashed #888;padding:4mm;break-inside:avoid}'
		+ '.t img{width:30mm;height:30mm}.code{font:bold 18pt monospace;letter-spacing:1px;margin:2mm 0}'
		+ '.what{font-weight:bold}.how{font-size:8pt;color:#333}.batch{font-size:7pt;color:#777}'
		+ '@media print{.noprint{display:none}}</style></head><body>'
		+ '<p class="noprint"><button onclick="window.print()">' + esc(_('Print')) + '</button></p>'
		+ '<div class="g">' + tickets + '</div></body></html>';
	var w = window.open('', '_blank');
	if (!w)
		return false;
	w.document.open();
	w.document.write(html);
	w.document.close();
	w.focus();
	w.print();
	return true;
}

return baseclass.extend({
	buys: buys,
	qrEncoder: qrEncoder,
	payPage: payPage,
	printSheet: printSheet,
	priceText: priceText,
	priceUnits: priceUnits,
	typedPrice: typedPrice,
	POPUP_BLOCKED: _('The browser blocked the ticket window: allow pop-ups for this page, then press Print tickets again.')
});
