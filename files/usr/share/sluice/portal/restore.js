/*
 * The pay page's "paid already?" box: a customer whose phone came back with a new (private, rotated) MAC restores the
 * session their wallet paid for by signing one message with it (POST /restore/challenge, personal_sign, POST
 * /restore; docs/x402.md "A returning customer on a new MAC"). Shown only with a browser wallet and no live session
 * on this device. Plain browser JS like portal.js, its own words in the same five languages; a voucher customer just
 * types the voucher again in the voucher form.
 * The pure part (SluiceRestore.*) and the box run in test/http/restore.test.ts on the stand-in DOM.
 */
(function(root) {
	'use strict';

	var WORDS = {
		en: {
			restoreTitle: 'Paid already?',
			restoreHint: 'If you paid with your wallet on this WiFi and your device now has a different address, get your time back here. Your wallet asks you to sign a message; nothing is paid.',
			restoreButton: 'Restore with my wallet',
			restoreSign: 'Sign the message in your wallet…',
			restored: 'Welcome back. Your session is on this device again.',
			noSession: 'This wallet has no session running on this WiFi.',
			ended: 'The session this wallet paid for has ended. Choose a plan to buy a new one.',
			hasOwn: 'This device already has its own session.',
			expired: 'That took too long. Please try again.',
			wrongWallet: 'That signature is not from the wallet that paid. Choose the paying account in your wallet and try again.',
			cancelled: 'You cancelled in your wallet. Nothing changed.',
			failed: 'That did not work. Please try again, or ask the staff for help.'
		},
		de: {
			restoreTitle: 'Schon bezahlt?',
			restoreHint: 'Wenn Sie in diesem WLAN mit Ihrer Wallet bezahlt haben und Ihr Gerät jetzt eine andere Adresse hat, holen Sie Ihre Zeit hier zurück. Ihre Wallet bittet Sie, eine Nachricht zu signieren; es wird nichts bezahlt.',
			restoreButton: 'Mit meiner Wallet wiederherstellen',
			restoreSign: 'Signieren Sie die Nachricht in Ihrer Wallet…',
			restored: 'Willkommen zurück. Ihre Sitzung ist wieder auf diesem Gerät.',
			noSession: 'Für diese Wallet läuft in diesem WLAN keine Sitzung.',
			ended: 'Die mit dieser Wallet bezahlte Sitzung ist beendet. Wählen Sie einen Tarif, um eine neue zu kaufen.',
			hasOwn: 'Dieses Gerät hat bereits eine eigene Sitzung.',
			expired: 'Das hat zu lange gedauert. Bitte versuchen Sie es erneut.',
			wrongWallet: 'Diese Signatur stammt nicht von der Wallet, die bezahlt hat. Wählen Sie in Ihrer Wallet das zahlende Konto und versuchen Sie es erneut.',
			cancelled: 'Sie haben in Ihrer Wallet abgebrochen. Es hat sich nichts geändert.',
			failed: 'Das hat nicht geklappt. Bitte versuchen Sie es erneut oder fragen Sie das Personal.'
		},
		es: {
			restoreTitle: '¿Ya pagó?',
			restoreHint: 'Si pagó con su monedero en este WiFi y su dispositivo tiene ahora otra dirección, recupere aquí su tiempo. Su monedero le pedirá firmar un mensaje; no se paga nada.',
			restoreButton: 'Recuperar con mi monedero',
			restoreSign: 'Firme el mensaje en su monedero…',
			restored: 'Bienvenido de nuevo. Su sesión vuelve a estar en este dispositivo.',
			noSession: 'Este monedero no tiene ninguna sesión activa en este WiFi.',
			ended: 'La sesión que pagó este monedero ha terminado. Elija un plan para comprar otra.',
			hasOwn: 'Este dispositivo ya tiene su propia sesión.',
			expired: 'Tardó demasiado. Inténtelo de nuevo.',
			wrongWallet: 'Esa firma no es del monedero que pagó. Elija la cuenta que pagó en su monedero e inténtelo de nuevo.',
			cancelled: 'Canceló en su monedero. No cambió nada.',
			failed: 'No funcionó. Inténtelo de nuevo o pida ayuda al personal.'
		},
		fr: {
			restoreTitle: 'Déjà payé ?',
			restoreHint: 'Si vous avez payé avec votre portefeuille sur ce WiFi et que votre appareil a maintenant une autre adresse, récupérez votre temps ici. Votre portefeuille vous demande de signer un message ; rien n\'est payé.',
			restoreButton: 'Restaurer avec mon portefeuille',
			restoreSign: 'Signez le message dans votre portefeuille…',
			restored: 'Bon retour. Votre session est de nouveau sur cet appareil.',
			noSession: 'Ce portefeuille n\'a aucune session en cours sur ce WiFi.',
			ended: 'La session payée par ce portefeuille est terminée. Choisissez une offre pour en acheter une nouvelle.',
			hasOwn: 'Cet appareil a déjà sa propre session.',
			expired: 'Cela a pris trop de temps. Veuillez réessayer.',
			wrongWallet: 'Cette signature ne vient pas du portefeuille qui a payé. Choisissez le compte payeur dans votre portefeuille et réessayez.',
			cancelled: 'Vous avez annulé dans votre portefeuille. Rien n\'a changé.',
			failed: 'Cela n\'a pas fonctionné. Réessayez ou demandez de l\'aide au personnel.'
		},
		pt: {
			restoreTitle: 'Já pagou?',
			restoreHint: 'Se você pagou com sua carteira neste WiFi e seu dispositivo agora tem outro endereço, recupere seu tempo aqui. Sua carteira pedirá que você assine uma mensagem; nada é pago.',
			restoreButton: 'Restaurar com minha carteira',
			restoreSign: 'Assine a mensagem na sua carteira…',
			restored: 'Bem-vindo de volta. Sua sessão está neste dispositivo novamente.',
			noSession: 'Esta carteira não tem nenhuma sessão ativa neste WiFi.',
			ended: 'A sessão paga por esta carteira terminou. Escolha um plano para comprar outra.',
			hasOwn: 'Este dispositivo já tem sua própria sessão.',
			expired: 'Demorou demais. Tente novamente.',
			wrongWallet: 'Essa assinatura não é da carteira que pagou. Escolha a conta pagadora na sua carteira e tente novamente.',
			cancelled: 'Você cancelou na sua carteira. Nada mudou.',
			failed: 'Não funcionou. Tente novamente ou peça ajuda à equipe.'
		}
	};

	var lang = 'en';

	function setLanguages(languages) {
		lang = 'en';
		var list = languages || [];
		for (var i = 0; i < list.length; i++) {
			var base = String(list[i]).toLowerCase().split('-')[0];
			if (WORDS[base]) { lang = base; break; }
		}
		return lang;
	}

	function w(key) {
		return WORDS[lang][key] || WORDS.en[key] || key;
	}

	/* The customer's words for a refused restore (the router logs its reason with this device's MAC). */
	function refusalKey(code) {
		switch (code) {
		case 'ERR_RESTORE_NO_SESSION': return 'noSession';
		case 'ERR_RESTORE_SESSION_ENDED': return 'ended';
		case 'ERR_SESSION_MOVE_TARGET': return 'hasOwn';
		case 'ERR_RESTORE_EXPIRED': case 'ERR_RESTORE_CHALLENGE': return 'expired';
		case 'ERR_RESTORE_SIGNER': return 'wrongWallet';
		}
		return 'failed';
	}

	/* personal_sign takes the message as 0x-hex of its UTF-8 bytes (MetaMask shows it decoded). */
	function utf8Hex(text) {
		var bytes = unescape(encodeURIComponent(text));
		var hex = '0x';
		for (var i = 0; i < bytes.length; i++)
			hex += ('0' + bytes.charCodeAt(i).toString(16)).slice(-2);
		return hex;
	}

	function post(path, body) {
		return fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(function(res) {
			return res.text().then(function(text) {
				var parsed = null;
				try { parsed = text ? JSON.parse(text) : null; } catch (e) { parsed = null; }
				return { status: res.status, body: parsed };
			});
		});
	}

	function Refused(key) { this.key = key; }

	function codeOf(body) {
		return body && body.error && typeof body.error === 'object' ? body.error.code : null;
	}

	/* The whole restore with wallet `eth` (EIP-1193): resolves with the router's answer, rejects with Refused. */
	function restore(eth, onSigning) {
		var account;
		return eth.request({ method: 'eth_requestAccounts' }).then(function(accounts) {
			account = accounts && accounts[0];
			if (!account) throw new Refused('failed');
			return post('/restore/challenge', { payer: account });
		}).then(function(r) {
			if (r.status !== 200 || !r.body || !r.body.nonce) throw new Refused(refusalKey(codeOf(r.body)));
			if (onSigning) onSigning();
			var nonce = r.body.nonce;
			return eth.request({ method: 'personal_sign', params: [ utf8Hex(r.body.message), account ] }).then(function(signature) {
				return post('/restore', { nonce: nonce, signature: signature });
			});
		}).then(function(r) {
			if (r.status !== 200 || !r.body || !r.body.session) throw new Refused(refusalKey(codeOf(r.body)));
			return r.body;
		});
	}

	var api = root.SluiceRestore = { setLanguages: setLanguages, refusalKey: refusalKey, utf8Hex: utf8Hex, restore: restore, words: WORDS };

	/* ---- the box ---- */

	if (typeof document === 'undefined' || !document.getElementById('restore-section'))
		return;

	function $(id) { return document.getElementById(id); }

	function show(text, kind) {
		var m = $('restore-message');
		m.textContent = text;
		m.className = 'hint ' + (kind || '');
		m.hidden = false;
	}

	function start() {
		setLanguages(root.navigator && root.navigator.languages);
		var eth = root.ethereum;
		if (!eth)
			return Promise.resolve();
		$('restore-title').textContent = w('restoreTitle');
		$('restore-hint').textContent = w('restoreHint');
		var button = $('restore-button');
		button.textContent = w('restoreButton');
		button.addEventListener('click', function() {
			button.disabled = true;
			api.running = restore(eth, function() { show(w('restoreSign')); }).then(function() {
				// The box goes (this device has a live session now), so the welcome goes where the page says how a
				// purchase went, and the status box asks for the session at once. No reload: in a real browser it
				// wiped the welcome before anyone could read it.
				$('restore-section').hidden = true;
				$('restore-message').hidden = true;
				var m = $('message');
				m.textContent = w('restored');
				m.className = 'ok';
				if (typeof m.scrollIntoView === 'function') m.scrollIntoView({ block: 'nearest' });
				var portal = root.SluicePortal;
				if (portal && typeof portal.showSession === 'function') return portal.showSession();
				if (root.location && typeof root.location.reload === 'function') root.location.reload();
			}, function(e) {
				show(e instanceof Refused ? w(e.key) : e && e.code === 4001 ? w('cancelled') : w('failed'), 'error');
			}).then(function() { button.disabled = false; });
		});
		// Only for a device without a live session of its own: nothing to restore onto otherwise.
		return fetch('/session').then(function(res) {
			return res.text().then(function(text) {
				var body = null;
				try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
				var s = body && body.session;
				var live = s && (s.state === 'ACTIVE' || s.state === 'PENDING');
				$('restore-section').hidden = res.status === 429 || !!live;
			});
		}, function() { /* unreachable: portal.js says so */ });
	}

	api.started = new Promise(function(resolve) {
		if (document.readyState === 'loading')
			document.addEventListener('DOMContentLoaded', function() { resolve(start()); });
		else
			resolve(start());
	});
})(typeof window !== 'undefined' ? window : globalThis);
