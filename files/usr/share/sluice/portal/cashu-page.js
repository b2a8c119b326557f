/*
 * The pay page's "Pay with Cashu" (issue 39 item 4; docs/tollgate.md "Pay page"), shown when the router takes Cashu
 * (GET /cashu/offer answers; the tollgate section runs). The customer pastes a token (cashuA…/cashuB…) and it goes to
 * POST /cashu/pay, which buys the tollgate plan for this device. Or the `cashu:` link opens the wallet app with a
 * NUT-18 payment request (creqA…, in-band) for the chosen steps: the wallet pays it by handing over a token, which
 * the customer pastes here. Loaded before portal.js, which calls attach() with its helpers; its words are merged
 * into portal.js's MESSAGES (five languages). SluiceCashuPage.refusalKey(code) is the pure part.
 */
(function(root) {
	'use strict';

	var WORDS = {
		en: {
			cTitle: 'Pay with Cashu', cChoose: 'Pay with Cashu below.', cOffer: '{price} sat per {amount}.', cTotal: '{amount} for {price} sat',
			cOpenWallet: 'Open my Cashu wallet', cScan: 'Or scan this payment request with a Cashu wallet:',
			cPaste: 'Paste your Cashu token (cashuA… or cashuB…)', cPay: 'Pay with Cashu', cHowMany: 'How many',
			cChecking: 'Checking the token with the mint…',
			cPending: 'Your payment is being confirmed. Do not pay again: your access starts by itself as soon as the mint confirms it.',
			cSpent: 'This token was already spent, so nothing was taken. If you paid with it here, your access is shown above.',
			cReplayed: 'This token was already used here. Your access is shown above.',
			cWrongMint: 'This router does not take tokens from that mint. It takes tokens from: {mints}.',
			cUnderpaid: 'This token is worth too little: at least {price} sat is needed, after the mint\'s fees. Nothing was taken.',
			cTooLarge: 'This token is worth more than one purchase may buy. Please send a smaller one. Nothing was taken.',
			cInvalid: 'This is not a Cashu token this router can take. Please copy the whole token again (it starts with cashuA or cashuB).',
			cLocked: 'This token is locked to a key, so the router cannot take it. Please send an unlocked token.',
			cMintDown: 'The mint cannot be reached right now. Nothing was taken. Please try again in a minute.',
			cFull: 'The router cannot take more Cashu right now. Nothing was taken. Please ask the staff.',
			cEmpty: 'Please paste your Cashu token first.',
			lPay: 'Pay with Lightning', lAsking: 'Asking the router for a Lightning invoice…', lScan: 'Pay this Lightning invoice from your wallet (scan it, or tap the link):', lOpen: 'Open in my Lightning wallet', lWaiting: 'Waiting for your Lightning payment… This page updates by itself: do not pay twice.', lPaid: 'Paid with Lightning. You are online.', lExpired: 'This invoice expired without being paid. Nothing was charged: ask for a new one.', lClaimed: 'This invoice was paid, but someone else took its ecash at the mint before this router could, so no access was granted. Keep your payment receipt and ask the staff.', lBusy: 'Too many Lightning invoices are open right now (yours, or this router\'s). Pay one you asked for, pay with a Cashu token, or try again in a few minutes.'
		},
		de: {
			cTitle: 'Mit Cashu bezahlen', cChoose: 'Bezahlen Sie unten mit Cashu.', cOffer: '{price} sat pro {amount}.', cTotal: '{amount} für {price} sat',
			cOpenWallet: 'Meine Cashu-Wallet öffnen', cScan: 'Oder scannen Sie diese Zahlungsanforderung mit einer Cashu-Wallet:',
			cPaste: 'Fügen Sie Ihr Cashu-Token ein (cashuA… oder cashuB…)', cPay: 'Mit Cashu bezahlen', cHowMany: 'Wie viele',
			cChecking: 'Das Token wird bei der Mint geprüft…',
			cPending: 'Ihre Zahlung wird bestätigt. Bitte nicht noch einmal zahlen: Ihr Zugang beginnt von selbst, sobald die Mint sie bestätigt.',
			cSpent: 'Dieses Token wurde schon ausgegeben, es wurde nichts abgebucht. Haben Sie hier damit bezahlt, sehen Sie Ihren Zugang oben.',
			cReplayed: 'Dieses Token wurde hier schon verwendet. Ihr Zugang steht oben.',
			cWrongMint: 'Dieser Router nimmt keine Tokens dieser Mint. Er nimmt Tokens von: {mints}.',
			cUnderpaid: 'Dieses Token ist zu wenig wert: nach den Gebühren der Mint sind mindestens {price} sat nötig. Es wurde nichts abgebucht.',
			cTooLarge: 'Dieses Token ist mehr wert, als ein Kauf kaufen darf. Bitte senden Sie ein kleineres. Es wurde nichts abgebucht.',
			cInvalid: 'Das ist kein Cashu-Token, das dieser Router nehmen kann. Bitte kopieren Sie das ganze Token noch einmal (es beginnt mit cashuA oder cashuB).',
			cLocked: 'Dieses Token ist an einen Schlüssel gebunden, der Router kann es nicht nehmen. Bitte senden Sie ein ungebundenes Token.',
			cMintDown: 'Die Mint ist gerade nicht erreichbar. Es wurde nichts abgebucht. Bitte versuchen Sie es in einer Minute noch einmal.',
			cFull: 'Der Router kann gerade kein weiteres Cashu annehmen. Es wurde nichts abgebucht. Bitte fragen Sie das Personal.',
			cEmpty: 'Bitte fügen Sie zuerst Ihr Cashu-Token ein.',
			lPay: 'Mit Lightning bezahlen', lAsking: 'Der Router erstellt eine Lightning-Rechnung…', lScan: 'Bezahlen Sie diese Lightning-Rechnung mit Ihrer Wallet (scannen oder den Link antippen):', lOpen: 'In meiner Lightning-Wallet öffnen', lWaiting: 'Warten auf Ihre Lightning-Zahlung… Diese Seite aktualisiert sich selbst: bitte nicht zweimal zahlen.', lPaid: 'Mit Lightning bezahlt. Sie sind online.', lExpired: 'Diese Rechnung ist unbezahlt abgelaufen. Es wurde nichts abgebucht: fordern Sie eine neue an.', lClaimed: 'Diese Rechnung wurde bezahlt, aber jemand anderes hat ihr Ecash bei der Mint abgeholt, bevor dieser Router es konnte: Es wurde kein Zugang gewährt. Bewahren Sie Ihren Zahlungsbeleg auf und wenden Sie sich an das Personal.', lBusy: 'Gerade sind zu viele Lightning-Rechnungen offen (Ihre oder die dieses Routers). Bezahlen Sie eine angeforderte, zahlen Sie mit einem Cashu-Token oder versuchen Sie es in ein paar Minuten erneut.'
		},
		es: {
			cTitle: 'Pagar con Cashu', cChoose: 'Pague con Cashu más abajo.', cOffer: '{price} sat por {amount}.', cTotal: '{amount} por {price} sat',
			cOpenWallet: 'Abrir mi monedero Cashu', cScan: 'O escanee esta solicitud de pago con un monedero Cashu:',
			cPaste: 'Pegue su token Cashu (cashuA… o cashuB…)', cPay: 'Pagar con Cashu', cHowMany: 'Cuántos',
			cChecking: 'Comprobando el token con la casa de moneda…',
			cPending: 'Su pago se está confirmando. No pague otra vez: su acceso empieza solo en cuanto la casa de moneda lo confirme.',
			cSpent: 'Este token ya se gastó, así que no se cobró nada. Si pagó con él aquí, su acceso aparece arriba.',
			cReplayed: 'Este token ya se usó aquí. Su acceso aparece arriba.',
			cWrongMint: 'Este router no acepta tokens de esa casa de moneda. Acepta tokens de: {mints}.',
			cUnderpaid: 'Este token vale demasiado poco: se necesitan al menos {price} sat, después de las comisiones de la casa de moneda. No se cobró nada.',
			cTooLarge: 'Este token vale más de lo que una compra puede comprar. Envíe uno más pequeño. No se cobró nada.',
			cInvalid: 'Esto no es un token Cashu que este router pueda aceptar. Copie otra vez el token completo (empieza por cashuA o cashuB).',
			cLocked: 'Este token está bloqueado con una clave, así que el router no puede aceptarlo. Envíe un token sin bloquear.',
			cMintDown: 'No se puede contactar con la casa de moneda ahora. No se cobró nada. Inténtelo otra vez en un minuto.',
			cFull: 'El router no puede aceptar más Cashu ahora. No se cobró nada. Pregunte al personal.',
			cEmpty: 'Pegue primero su token Cashu.',
			lPay: 'Pagar con Lightning', lAsking: 'Pidiendo al router una factura Lightning…', lScan: 'Pague esta factura Lightning desde su monedero (escanéela o toque el enlace):', lOpen: 'Abrir en mi monedero Lightning', lWaiting: 'Esperando su pago Lightning… Esta página se actualiza sola: no pague dos veces.', lPaid: 'Pagado con Lightning. Ya está en línea.', lExpired: 'Esta factura caducó sin pagarse. No se cobró nada: pida una nueva.', lClaimed: 'Esta factura se pagó, pero otra persona se llevó su ecash en la casa de moneda antes que este router, así que no se concedió acceso. Guarde el comprobante de pago y pregunte al personal.', lBusy: 'Ahora hay demasiadas facturas Lightning abiertas (suyas o de este router). Pague una que ya pidió, pague con un token Cashu o inténtelo de nuevo en unos minutos.'
		},
		fr: {
			cTitle: 'Payer avec Cashu', cChoose: 'Payez avec Cashu ci-dessous.', cOffer: '{price} sat par {amount}.', cTotal: '{amount} pour {price} sat',
			cOpenWallet: 'Ouvrir mon portefeuille Cashu', cScan: 'Ou scannez cette demande de paiement avec un portefeuille Cashu :',
			cPaste: 'Collez votre jeton Cashu (cashuA… ou cashuB…)', cPay: 'Payer avec Cashu', cHowMany: 'Combien',
			cChecking: 'Vérification du jeton auprès de la monnaie…',
			cPending: 'Votre paiement est en cours de confirmation. Ne payez pas une seconde fois : votre accès commence tout seul dès que la monnaie le confirme.',
			cSpent: 'Ce jeton a déjà été dépensé, rien n\'a donc été prélevé. Si vous avez payé avec ici, votre accès est affiché ci-dessus.',
			cReplayed: 'Ce jeton a déjà été utilisé ici. Votre accès est affiché ci-dessus.',
			cWrongMint: 'Ce routeur n\'accepte pas les jetons de cette monnaie. Il accepte les jetons de : {mints}.',
			cUnderpaid: 'Ce jeton vaut trop peu : il faut au moins {price} sat, après les frais de la monnaie. Rien n\'a été prélevé.',
			cTooLarge: 'Ce jeton vaut plus qu\'un achat ne peut acheter. Envoyez-en un plus petit. Rien n\'a été prélevé.',
			cInvalid: 'Ce n\'est pas un jeton Cashu que ce routeur peut accepter. Copiez à nouveau le jeton entier (il commence par cashuA ou cashuB).',
			cLocked: 'Ce jeton est verrouillé par une clé, le routeur ne peut donc pas l\'accepter. Envoyez un jeton non verrouillé.',
			cMintDown: 'La monnaie est injoignable pour le moment. Rien n\'a été prélevé. Réessayez dans une minute.',
			cFull: 'Le routeur ne peut pas accepter plus de Cashu pour le moment. Rien n\'a été prélevé. Adressez-vous au personnel.',
			cEmpty: 'Collez d\'abord votre jeton Cashu.',
			lPay: 'Payer avec Lightning', lAsking: 'Demande d\'une facture Lightning au routeur…', lScan: 'Payez cette facture Lightning depuis votre portefeuille (scannez-la ou touchez le lien) :', lOpen: 'Ouvrir dans mon portefeuille Lightning', lWaiting: 'En attente de votre paiement Lightning… Cette page se met à jour toute seule : ne payez pas deux fois.', lPaid: 'Payé avec Lightning. Vous êtes en ligne.', lExpired: 'Cette facture a expiré sans être payée. Rien n\'a été prélevé : demandez-en une nouvelle.', lClaimed: 'Cette facture a été payée, mais quelqu\'un d\'autre a retiré son ecash à la mint avant ce routeur : aucun accès n\'a été accordé. Gardez votre reçu de paiement et adressez-vous au personnel.', lBusy: 'Trop de factures Lightning sont ouvertes en ce moment (les vôtres ou celles de ce routeur). Payez une facture déjà demandée, payez avec un jeton Cashu ou réessayez dans quelques minutes.'
		},
		pt: {
			cTitle: 'Pagar com Cashu', cChoose: 'Pague com Cashu abaixo.', cOffer: '{price} sat por {amount}.', cTotal: '{amount} por {price} sat',
			cOpenWallet: 'Abrir minha carteira Cashu', cScan: 'Ou escaneie este pedido de pagamento com uma carteira Cashu:',
			cPaste: 'Cole seu token Cashu (cashuA… ou cashuB…)', cPay: 'Pagar com Cashu', cHowMany: 'Quantos',
			cChecking: 'Verificando o token com a casa da moeda…',
			cPending: 'Seu pagamento está sendo confirmado. Não pague de novo: seu acesso começa sozinho assim que a casa da moeda o confirmar.',
			cSpent: 'Este token já foi gasto, então nada foi cobrado. Se você pagou com ele aqui, seu acesso aparece acima.',
			cReplayed: 'Este token já foi usado aqui. Seu acesso aparece acima.',
			cWrongMint: 'Este roteador não aceita tokens dessa casa da moeda. Ele aceita tokens de: {mints}.',
			cUnderpaid: 'Este token vale pouco demais: são necessários pelo menos {price} sat, depois das taxas da casa da moeda. Nada foi cobrado.',
			cTooLarge: 'Este token vale mais do que uma compra pode comprar. Envie um menor. Nada foi cobrado.',
			cInvalid: 'Isto não é um token Cashu que este roteador possa aceitar. Copie o token inteiro de novo (ele começa com cashuA ou cashuB).',
			cLocked: 'Este token está bloqueado por uma chave, então o roteador não pode aceitá-lo. Envie um token desbloqueado.',
			cMintDown: 'A casa da moeda não pode ser contatada agora. Nada foi cobrado. Tente de novo em um minuto.',
			cFull: 'O roteador não pode aceitar mais Cashu agora. Nada foi cobrado. Pergunte à equipe.',
			cEmpty: 'Cole primeiro seu token Cashu.',
			lPay: 'Pagar com Lightning', lAsking: 'Pedindo ao roteador uma fatura Lightning…', lScan: 'Pague esta fatura Lightning pela sua carteira (escaneie ou toque no link):', lOpen: 'Abrir na minha carteira Lightning', lWaiting: 'Aguardando seu pagamento Lightning… Esta página se atualiza sozinha: não pague duas vezes.', lPaid: 'Pago com Lightning. Você está online.', lExpired: 'Esta fatura expirou sem ser paga. Nada foi cobrado: peça uma nova.', lClaimed: 'Esta fatura foi paga, mas outra pessoa retirou o ecash dela na casa da moeda antes deste roteador, então nenhum acesso foi concedido. Guarde o comprovante de pagamento e fale com a equipe.', lBusy: 'Há faturas Lightning demais abertas agora (suas ou deste roteador). Pague uma que você já pediu, pague com um token Cashu ou tente de novo em alguns minutos.'
		}
	};

	/* The word for a refused payment's code (null: portal.js's own words for it). */
	function refusalKey(code) {
		switch (code) {
		case 'ERR_CASHU_PENDING': case 'ERR_PAYMENT_IN_PROGRESS': return 'cPending';
		case 'ERR_CASHU_TOKEN_SPENT': return 'cSpent';
		case 'ERR_PAYMENT_REPLAYED': return 'cReplayed';
		case 'ERR_CASHU_MINT_NOT_ACCEPTED': return 'cWrongMint';
		case 'ERR_CASHU_UNDERPAID': return 'cUnderpaid';
		case 'ERR_CASHU_TOO_LARGE': return 'cTooLarge';
		case 'ERR_CASHU_TOKEN_INVALID': case 'ERR_CASHU_UNIT': case 'ERR_CASHU_KEYSET_UNKNOWN': return 'cInvalid';
		case 'ERR_CASHU_TOKEN_LOCKED': return 'cLocked';
		case 'ERR_CASHU_MINT_UNAVAILABLE': return 'cMintDown';
		case 'ERR_CASHU_BALANCE_FULL': return 'cFull';
		default: return null;
		}
	}

	var p = null; // portal.js's helpers (attach)
	var offer = null; // the router's last GET /cashu/offer

	function $(id) { return document.getElementById(id); }

	function el(tag, attrs, text) {
		var e = document.createElement(tag);
		for (var k in attrs || {})
			e.setAttribute(k, attrs[k]);
		if (text !== undefined)
			e.textContent = text;
		return e;
	}

	/* The mints as the customer reads them: their host names. */
	function mintNames(mints) {
		return (mints || []).map(function(m) { try { return new URL(m).host; } catch (e) { return m; } }).join(', ');
	}

	/* The total beside "How many" for `steps` of the offer's plan: what the customer pays, read before paying. */
	function showTotal(steps) {
		var n = String(steps || '').trim();
		if (!offer || !/^[1-9][0-9]{0,15}$/.test(n))
			return;
		$('cashu-total').textContent = p.t('cTotal', { amount: p.amountText(offer.metric, (BigInt(offer.step_size) * BigInt(n)).toString()), price: (BigInt(offer.price_per_step) * BigInt(n)).toString() });
	}

	/* The wallet link and its QR code for the offer's payment request. */
	function showRequest(o) {
		var link = 'cashu:' + o.payment_request;
		$('cashu-link').setAttribute('href', link);
		showTotal(o.steps);
		var box = $('cashu-qr-box');
		box.hidden = true;
		if (root.SluiceQr) {
			try {
				$('cashu-qr').setAttribute('src', 'data:image/svg+xml,' + encodeURIComponent(root.SluiceQr.svg(root.SluiceQr.encode(link, 'L'))));
				box.hidden = false;
			} catch (e) { /* too long for the encoder: the link remains */ }
		}
	}

	/* The offer again for `steps` (the payment request asks for exactly their price). */
	function refreshRequest(steps) {
		return p.getJson('/cashu/offer?steps=' + encodeURIComponent(steps)).then(function(r) {
			if (r.status === 200 && r.body && r.body.payment_request) {
				offer = r.body;
				showRequest(offer);
			}
		}).catch(function() { /* the last request stays */ });
	}

	function build(section, o) {
		section.appendChild(el('h2', {}, p.t('cTitle')));
		var card = el('div', { 'class': 'card' });
		card.appendChild(el('div', { 'class': 'plan-price', id: 'cashu-offer' }, p.t('cOffer', { price: o.price_per_step, amount: p.amountText(o.metric, o.step_size) })));
		var row = el('div', { 'class': 'row' });
		var field = el('div');
		field.appendChild(el('label', { 'for': 'cashu-steps' }, p.t('cHowMany')));
		var steps = el('input', { id: 'cashu-steps', 'class': 'steps', type: 'number', min: o.min_steps, value: o.min_steps, inputmode: 'numeric' });
		if (o.max_steps !== null)
			steps.setAttribute('max', o.max_steps);
		field.appendChild(steps);
		row.appendChild(field);
		row.appendChild(el('div', { 'class': 'total', id: 'cashu-total' }));
		card.appendChild(row);
		var open = el('p');
		open.appendChild(el('a', { id: 'cashu-link', href: '#', rel: 'noopener' }, p.t('cOpenWallet')));
		card.appendChild(open);
		var qr = el('div', { id: 'cashu-qr-box', hidden: '' });
		qr.appendChild(el('p', { 'class': 'hint' }, p.t('cScan')));
		qr.appendChild(el('img', { id: 'cashu-qr', 'class': 'qr', alt: '' }));
		card.appendChild(qr);
		var form = el('form', { id: 'cashu-form', autocomplete: 'off' });
		form.appendChild(el('label', { 'for': 'cashu-token' }, p.t('cPaste')));
		form.appendChild(el('textarea', { id: 'cashu-token', rows: '3', autocapitalize: 'off', spellcheck: 'false', style: 'width:100%;box-sizing:border-box;font:inherit' }));
		form.appendChild(el('button', { type: 'submit', id: 'cashu-pay' }, p.t('cPay')));
		card.appendChild(form);
		if (o.lightning) {
			var ln = el('div', { id: 'lightning' });
			var lnButton = el('button', { type: 'button', id: 'lightning-pay' }, p.t('lPay'));
			lnButton.addEventListener('click', function() { lightning($('cashu-steps').value); });
			ln.appendChild(lnButton);
			var lnBox = el('div', { id: 'lightning-box', hidden: '' });
			lnBox.appendChild(el('p', { 'class': 'hint' }, p.t('lScan')));
			lnBox.appendChild(el('img', { id: 'lightning-qr', 'class': 'qr', alt: '' }));
			var lnLink = el('p');
			lnLink.appendChild(el('a', { id: 'lightning-link', href: '#', rel: 'noopener' }, p.t('lOpen')));
			lnBox.appendChild(lnLink);
			ln.appendChild(lnBox);
			card.appendChild(ln);
		}
		section.appendChild(card);
		showRequest(o);
		// As it is typed (a change event waits for the field to lose focus): the total at once, the wallet's payment
		// request once the router answers for the new quantity.
		steps.addEventListener('input', function() {
			var n = String(steps.value).trim();
			showTotal(n);
			if (/^[1-9][0-9]{0,15}$/.test(n))
				refreshRequest(n);
		});
		steps.addEventListener('change', function() {
			var n = String(steps.value).trim();
			if (/^[1-9][0-9]{0,15}$/.test(n))
				refreshRequest(n);
		});
		form.addEventListener('submit', function(ev) {
			ev.preventDefault();
			pay($('cashu-token').value);
		});
	}

	/* Sends a pasted token; the router's answer in the customer's words. */
	function pay(text) {
		var token = String(text || '').trim();
		if (!token) {
			p.say(p.t('cEmpty'), 'error');
			return Promise.resolve();
		}
		var button = $('cashu-pay');
		if (button)
			button.disabled = true;
		p.say(p.t('cChecking'));
		return p.getJson('/cashu/pay', {
			method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: token })
		}).then(function(r) {
			if (r.status === 200) {
				// Spent now: left in the box it would only be pasted again.
				$('cashu-token').value = '';
				return p.done(r);
			}
			var code = p.errorCode(r.body), key = refusalKey(code);
			if (!key)
				throw new p.Refusal(p.errorText(r.status, r.body));
			var price = offer ? (BigInt(offer.price_per_step) * BigInt(offer.min_steps)).toString() : '';
			p.say(p.t(key, { mints: mintNames(offer && offer.mints), price: price }), key === 'cPending' ? 'info' : 'error');
		}).catch(function(e) {
			p.say(p.failureText(e), 'error');
		}).then(function() {
			if (button)
				button.disabled = false;
		});
	}

	var polling = null; // the open quote's poll (one at a time)

	/* Pay with Lightning: the router's invoice for `steps`, shown as a QR code and a lightning: link, polled until paid. */
	function lightning(steps) {
		var n = String(steps || '').trim();
		if (!/^[1-9][0-9]{0,15}$/.test(n))
			n = offer ? offer.min_steps : '1';
		var button = $('lightning-pay');
		button.disabled = true;
		p.say(p.t('lAsking'));
		return p.getJson('/cashu/lightning', {
			method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ steps: n })
		}).then(function(r) {
			if (r.status !== 200 || !r.body || !r.body.request) {
				var code = p.errorCode(r.body);
				// Not "being confirmed" (a token's word): no invoice was made, the open-invoice limits are reached.
				var key = code === 'ERR_PAYMENT_IN_PROGRESS' ? 'lBusy' : refusalKey(code);
				throw new p.Refusal(key ? p.t(key, { mints: mintNames(offer && offer.mints), price: '' }) : p.errorText(r.status, r.body));
			}
			// Upper case: BOLT11 is case-insensitive, and a QR code of capitals is the smaller alphanumeric kind.
			var uri = 'lightning:' + r.body.request;
			$('lightning-link').setAttribute('href', uri);
			try {
				$('lightning-qr').setAttribute('src', 'data:image/svg+xml,' + encodeURIComponent(root.SluiceQr.svg(root.SluiceQr.encode(uri.toUpperCase(), 'L'))));
			} catch (e) { /* too long for the encoder: the link remains */ }
			$('lightning-box').hidden = false;
			// The invoice's own steps: what the customer is asked to pay for.
			showTotal(r.body.steps);
			p.say(p.t('lWaiting'));
			poll(r.body.quote);
		}).catch(function(e) {
			button.disabled = false;
			p.say(p.failureText(e), 'error');
		});
	}

	function poll(quote) {
		if (polling)
			root.clearTimeout(polling);
		polling = root.setTimeout(function() {
			polling = null;
			p.getJson('/cashu/lightning?quote=' + encodeURIComponent(quote)).then(function(r) {
				var state = r.body && r.body.state;
				if (state === 'paid') {
					$('lightning-box').hidden = true;
					$('lightning-pay').disabled = false;
					p.say(p.t('lPaid'), 'ok');
					if (root.SluicePortal && root.SluicePortal.showSession)
						root.SluicePortal.showSession();
				} else if (p.errorCode(r.body) === 'ERR_CASHU_QUOTE_CLAIMED') {
					// Paid, and minted at the mint by someone else: nothing will come; the payer must know.
					$('lightning-box').hidden = true;
					$('lightning-pay').disabled = false;
					p.say(p.t('lClaimed'), 'error');
				} else if (state === 'unknown') {
					$('lightning-box').hidden = true;
					$('lightning-pay').disabled = false;
					p.say(p.t('lExpired'), 'error');
				} else {
					poll(quote);
				}
			}).catch(function() { poll(quote); });
		}, 2000);
	}

	/* portal.js's helpers; the section appears when the router takes Cashu. Resolves when it is known. */
	function attach(helpers) {
		p = helpers;
		for (var lang in WORDS)
			if (p.MESSAGES[lang])
				for (var k in WORDS[lang])
					p.MESSAGES[lang][k] = WORDS[lang][k];
		var section = typeof document !== 'undefined' && $('cashu-section');
		if (!section)
			return null;
		return p.getJson('/cashu/offer').then(function(r) {
			if (r.status !== 200 || !r.body || !r.body.payment_request)
				return;
			offer = r.body;
			build(section, offer);
			section.hidden = false;
			api.offered = true;
			// The plans loaded first and found nothing else to sell: Cashu is.
			if ($('message').textContent === p.t('nothing'))
				p.say(p.t('cChoose'), 'info');
		}).catch(function() { /* no Cashu here: the section stays hidden */ });
	}

	var api = root.SluiceCashuPage = { WORDS: WORDS, attach: attach, refusalKey: refusalKey, pay: pay, lightning: lightning, offered: false };
})(typeof window !== 'undefined' ? window : globalThis);
