/*
 * Paying from a wallet app or another device, for a browser without a wallet (the no-wallet hint is showing): links
 * that open this page in MetaMask's, Coinbase Wallet's or Trust Wallet's own browser (their documented dapp-browser
 * link forms), and a QR code of this page's address (qr.js) to scan with a phone that has one. The wallet app must
 * be on this WiFi too (the page is on the router). MetaMask's link drops the scheme and opens https: it works when
 * the page is reached over https (http.portal_url, docs/captive-portal.md), the other two keep the URL as it is.
 * SluiceElsewhere.links(url) is the pure part (test/http/elsewhere.test.ts).
 */
(function(root) {
	'use strict';

	var WORDS = {
		en: { openIn: 'Open this page in your wallet app:', scan: 'Or scan this code with a phone that has a wallet:', qrAlt: 'QR code of this page\'s address' },
		de: { openIn: 'Diese Seite in Ihrer Wallet-App öffnen:', scan: 'Oder scannen Sie diesen Code mit einem Telefon, das eine Wallet hat:', qrAlt: 'QR-Code der Adresse dieser Seite' },
		es: { openIn: 'Abra esta página en la app de su monedero:', scan: 'O escanee este código con un teléfono que tenga un monedero:', qrAlt: 'Código QR de la dirección de esta página' },
		fr: { openIn: 'Ouvrez cette page dans l\'application de votre portefeuille :', scan: 'Ou scannez ce code avec un téléphone qui a un portefeuille :', qrAlt: 'Code QR de l\'adresse de cette page' },
		pt: { openIn: 'Abra esta página no app da sua carteira:', scan: 'Ou escaneie este código com um telefone que tenha uma carteira:', qrAlt: 'Código QR do endereço desta página' }
	};

	/* The dapp-browser links of three wallet apps for `url`. */
	function links(url) {
		var u = String(url);
		return [
			{ name: 'MetaMask', href: 'https://metamask.app.link/dapp/' + u.replace(/^https?:\/\//, '') },
			{ name: 'Coinbase Wallet', href: 'https://go.cb-w.com/dapp?cb_url=' + encodeURIComponent(u) },
			{ name: 'Trust Wallet', href: 'https://link.trustwallet.com/open_url?coin_id=60&url=' + encodeURIComponent(u) }
		];
	}

	function wordsFor(languages) {
		var list = languages || [];
		for (var i = 0; i < list.length; i++) {
			var base = String(list[i]).toLowerCase().split('-')[0];
			if (WORDS[base]) return WORDS[base];
		}
		return WORDS.en;
	}

	var api = root.SluiceElsewhere = { links: links, words: WORDS };

	if (typeof document === 'undefined' || !document.getElementById('wallet-apps') || root.ethereum)
		return;

	var words = wordsFor(root.navigator && root.navigator.languages);
	var url = root.location.href;
	var box = document.getElementById('wallet-apps');
	var label = document.createElement('span');
	label.textContent = words.openIn + ' ';
	box.appendChild(label);
	links(url).forEach(function(l, i) {
		var a = document.createElement('a');
		a.textContent = l.name;
		a.setAttribute('href', l.href);
		a.setAttribute('rel', 'noopener');
		box.appendChild(a);
		if (i < 2) {
			var sep = document.createElement('span');
			sep.textContent = ' · ';
			box.appendChild(sep);
		}
	});
	if (root.SluiceQr) {
		try {
			var img = document.getElementById('page-qr');
			img.setAttribute('src', 'data:image/svg+xml,' + encodeURIComponent(root.SluiceQr.svg(root.SluiceQr.encode(url, 'M'))));
			img.setAttribute('alt', words.qrAlt);
			document.getElementById('page-qr-label').textContent = words.scan;
			document.getElementById('page-qr-box').hidden = false;
			api.qr = true;
		} catch (e) { /* an address too long for a version 10 code: the links and the typed address remain */ }
	}
})(typeof window !== 'undefined' ? window : globalThis);
