/*
 * The pay page's "deposit, pay only for what you use, the rest comes back" (x402 `batch-settlement`, issue 24;
 * docs/batch-settlement.md "The customer's side"). Loaded before portal.js, which calls attach() with its helpers and
 * adds offer() to each plan card whose GET / entry carries a `batch_settlement` offer.
 * The signing is batch.js (SluiceBatchClient, built from src/browser/batch.ts): the wallet signs the deposit once; the
 * page's own voucher key, kept in localStorage with the channel for the channel's life, signs every voucher and the
 * refund request, so a customer whose captive-portal window closed can come back, pay again without the wallet and
 * ask for the rest. The router's channel state (GET /batch/channel) says what was charged, the ceiling and the refund.
 * Plain browser JS, like portal.js; its words are merged into portal.js's MESSAGES (five languages).
 */
(function(root) {
	'use strict';

	var WORDS = {
		en: {
			bOffer: 'Or deposit {deposit}: you pay only for what you use, the rest comes back to your wallet.',
			bPay: 'Deposit and go online', bPayAgain: 'Pay from my deposit',
			bConfirmDeposit: 'Confirm the deposit in your wallet (this is the only time it asks)…',
			bChannel: 'Your deposit: {balance}. Charged so far: {charged} (at most {ceiling} while your access runs).',
			bChannelEnded: 'Your deposit: {balance}. Charged for your access: {charged}.',
			bChannelPaid: 'You paid {charged} for what you used.',
			bAvailable: 'Coming back to you: {available}.',
			bRefundAsk: 'Give me the rest back now',
			bRefundRequested: 'The rest of your deposit is on its way back to your wallet.',
			bRefundDone: '{amount} came back to your wallet.',
			bRefundNothing: 'There is nothing left of your deposit to give back.',
			bRefundBusy: 'Your access is still running: the rest comes back after it ends.',
			bRefundForbidden: 'Only the browser that made the deposit can ask for it back. It still comes back to you when the router returns it.',
			bBusy: 'Your deposit is paying for access that is still running. Please wait until it ends, then buy more.',
			bDepositPending: 'Your deposit is still being confirmed. Please wait a minute and try again: you will not pay twice.',
			bNoClient: 'This browser cannot pay by deposit. Please reload the page, or pay with your wallet above.',
			bMismatch: 'The router\'s record of your deposit does not match what this browser signed, so nothing was signed or paid. Your deposit is still yours: ask the staff, or take it back from the chain.'
		},
		de: {
			bOffer: 'Oder hinterlegen Sie {deposit}: Sie zahlen nur, was Sie nutzen, der Rest geht an Ihre Wallet zurück.',
			bPay: 'Hinterlegen und lossurfen', bPayAgain: 'Aus meiner Hinterlegung zahlen',
			bConfirmDeposit: 'Bestätigen Sie die Hinterlegung in Ihrer Wallet (nur dieses eine Mal)…',
			bChannel: 'Ihre Hinterlegung: {balance}. Bisher berechnet: {charged} (höchstens {ceiling}, solange Ihr Zugang läuft).',
			bChannelEnded: 'Ihre Hinterlegung: {balance}. Berechnet für Ihren Zugang: {charged}.',
			bChannelPaid: 'Sie haben {charged} für Ihre Nutzung bezahlt.',
			bAvailable: 'Geht an Sie zurück: {available}.',
			bRefundAsk: 'Rest jetzt zurückgeben',
			bRefundRequested: 'Der Rest Ihrer Hinterlegung ist auf dem Weg zurück an Ihre Wallet.',
			bRefundDone: '{amount} ging an Ihre Wallet zurück.',
			bRefundNothing: 'Von Ihrer Hinterlegung ist nichts mehr zurückzugeben.',
			bRefundBusy: 'Ihr Zugang läuft noch: Der Rest geht nach seinem Ende zurück.',
			bRefundForbidden: 'Nur der Browser, der hinterlegt hat, kann den Rest zurückfordern. Er geht trotzdem an Sie zurück, wenn der Router ihn erstattet.',
			bBusy: 'Ihre Hinterlegung bezahlt einen Zugang, der noch läuft. Bitte warten Sie, bis er endet, und kaufen Sie dann mehr.',
			bDepositPending: 'Ihre Hinterlegung wird noch bestätigt. Bitte warten Sie eine Minute und versuchen Sie es erneut: Sie zahlen nicht doppelt.',
			bNoClient: 'Dieser Browser kann nicht per Hinterlegung zahlen. Bitte laden Sie die Seite neu oder zahlen Sie oben mit Ihrer Wallet.',
			bMismatch: 'Die Angaben des Routers zu Ihrer Hinterlegung passen nicht zu dem, was dieser Browser unterschrieben hat: Es wurde nichts unterschrieben oder bezahlt. Ihre Hinterlegung gehört weiter Ihnen: Fragen Sie das Personal oder holen Sie sie über die Blockchain zurück.'
		},
		es: {
			bOffer: 'O deposite {deposit}: paga solo lo que usa y el resto vuelve a su monedero.',
			bPay: 'Depositar y conectarme', bPayAgain: 'Pagar con mi depósito',
			bConfirmDeposit: 'Confirme el depósito en su monedero (es la única vez que se lo pide)…',
			bChannel: 'Su depósito: {balance}. Cobrado hasta ahora: {charged} (como máximo {ceiling} mientras dure su acceso).',
			bChannelEnded: 'Su depósito: {balance}. Cobrado por su acceso: {charged}.',
			bChannelPaid: 'Pagó {charged} por lo que usó.',
			bAvailable: 'Le vuelve: {available}.',
			bRefundAsk: 'Devolverme el resto ahora',
			bRefundRequested: 'El resto de su depósito está volviendo a su monedero.',
			bRefundDone: '{amount} volvió a su monedero.',
			bRefundNothing: 'No queda nada de su depósito para devolver.',
			bRefundBusy: 'Su acceso sigue activo: el resto vuelve cuando termine.',
			bRefundForbidden: 'Solo el navegador que hizo el depósito puede pedir el resto. Igualmente le vuelve cuando el router lo devuelva.',
			bBusy: 'Su depósito está pagando un acceso que sigue activo. Espere a que termine y luego compre más.',
			bDepositPending: 'Su depósito aún se está confirmando. Espere un minuto y vuelva a intentarlo: no pagará dos veces.',
			bNoClient: 'Este navegador no puede pagar con depósito. Recargue la página o pague con su monedero arriba.',
			bMismatch: 'Lo que el router dice de su depósito no coincide con lo que firmó este navegador, así que no se firmó ni se pagó nada. Su depósito sigue siendo suyo: pregunte al personal o recupérelo desde la cadena.'
		},
		fr: {
			bOffer: 'Ou déposez {deposit} : vous ne payez que ce que vous utilisez, le reste revient dans votre portefeuille.',
			bPay: 'Déposer et me connecter', bPayAgain: 'Payer avec mon dépôt',
			bConfirmDeposit: 'Confirmez le dépôt dans votre portefeuille (il ne le demande qu\'une fois)…',
			bChannel: 'Votre dépôt : {balance}. Facturé jusqu\'ici : {charged} (au plus {ceiling} tant que votre accès dure).',
			bChannelEnded: 'Votre dépôt : {balance}. Facturé pour votre accès : {charged}.',
			bChannelPaid: 'Vous avez payé {charged} pour ce que vous avez utilisé.',
			bAvailable: 'Vous revient : {available}.',
			bRefundAsk: 'Me rendre le reste maintenant',
			bRefundRequested: 'Le reste de votre dépôt revient vers votre portefeuille.',
			bRefundDone: '{amount} est revenu dans votre portefeuille.',
			bRefundNothing: 'Il ne reste rien de votre dépôt à rendre.',
			bRefundBusy: 'Votre accès est encore en cours : le reste revient quand il se termine.',
			bRefundForbidden: 'Seul le navigateur qui a fait le dépôt peut demander le reste. Il vous revient quand même quand le routeur le rend.',
			bBusy: 'Votre dépôt paie un accès encore en cours. Attendez qu\'il se termine, puis achetez-en plus.',
			bDepositPending: 'Votre dépôt est en cours de confirmation. Patientez une minute et réessayez : vous ne paierez pas deux fois.',
			bNoClient: 'Ce navigateur ne peut pas payer par dépôt. Rechargez la page ou payez avec votre portefeuille ci-dessus.',
			bMismatch: 'Ce que le routeur dit de votre dépôt ne correspond pas à ce que ce navigateur a signé : rien n\'a été signé ni payé. Votre dépôt reste à vous : demandez au personnel, ou reprenez-le depuis la blockchain.'
		},
		pt: {
			bOffer: 'Ou deposite {deposit}: você paga só o que usar, o resto volta para a sua carteira.',
			bPay: 'Depositar e entrar', bPayAgain: 'Pagar com meu depósito',
			bConfirmDeposit: 'Confirme o depósito na sua carteira (é a única vez que ela pede)…',
			bChannel: 'Seu depósito: {balance}. Cobrado até agora: {charged} (no máximo {ceiling} enquanto seu acesso durar).',
			bChannelEnded: 'Seu depósito: {balance}. Cobrado pelo seu acesso: {charged}.',
			bChannelPaid: 'Você pagou {charged} pelo que usou.',
			bAvailable: 'Volta para você: {available}.',
			bRefundAsk: 'Devolver o resto agora',
			bRefundRequested: 'O resto do seu depósito está voltando para a sua carteira.',
			bRefundDone: '{amount} voltou para a sua carteira.',
			bRefundNothing: 'Não sobrou nada do seu depósito para devolver.',
			bRefundBusy: 'Seu acesso ainda está ativo: o resto volta quando ele terminar.',
			bRefundForbidden: 'Só o navegador que fez o depósito pode pedir o resto. Ele volta para você mesmo assim quando o roteador devolver.',
			bBusy: 'Seu depósito está pagando um acesso que ainda está ativo. Espere terminar e depois compre mais.',
			bDepositPending: 'Seu depósito ainda está sendo confirmado. Aguarde um minuto e tente de novo: você não pagará duas vezes.',
			bNoClient: 'Este navegador não consegue pagar com depósito. Recarregue a página ou pague com a carteira acima.',
			bMismatch: 'O que o roteador diz do seu depósito não confere com o que este navegador assinou, então nada foi assinado nem pago. Seu depósito continua seu: fale com a equipe ou recupere-o pela blockchain.'
		}
	};

	/* The channel this browser pays from: its voucher key, salt and config, and what it last signed and knew. */
	var STORE_KEY = 'sluice-batch-channel';
	/* The spec's reason for a stale cumulative base: the router says what it charged, the page signs again once. */
	var MISMATCH = 'invalid_batch_settlement_evm_cumulative_amount_mismatch';

	/* No bigint literals: a browser without BigInt then fails on this file's first payment, not on parsing it. */
	var ZERO = typeof BigInt === 'function' ? BigInt(0) : 0;
	var p = null; // portal.js's helpers (attach)
	var channelView = null; // the router's last answer for the channel (GET /batch/channel)
	var updaters = []; // each plan card's deposit button: its words follow what the router says is left

	function client() { return root.SluiceBatchClient || null; }

	function load() {
		try {
			var rec = JSON.parse(root.localStorage.getItem(STORE_KEY) || 'null');
			return rec && /^0x[0-9a-f]{64}$/i.test(rec.key) && rec.config ? rec : null;
		} catch (e) { return null; }
	}

	/* Written before anything is signed for it: a closed window must not lose the key of a channel with money in it. */
	function save(rec) {
		try { root.localStorage.setItem(STORE_KEY, JSON.stringify(rec)); } catch (e) { /* private mode: this visit still works */ }
	}

	function randomHex32() {
		var bytes = new Uint8Array(32);
		root.crypto.getRandomValues(bytes);
		return '0x' + Array.prototype.map.call(bytes, function(b) { return ('0' + b.toString(16)).slice(-2); }).join('');
	}

	function max(a, b) { return a > b ? a : b; }

	/* The customer's words for a refused batch payment or refund; anything else is portal.js's mapping. */
	function errorText(status, body, plan) {
		switch (p.errorCode(body)) {
		case 'ERR_BATCH_CHANNEL_BUSY': return p.t('bBusy');
		case 'ERR_BATCH_DEPOSIT_PENDING': return p.t('bDepositPending');
		case 'ERR_BATCH_REFUND_FORBIDDEN': return p.t('bRefundForbidden');
		case 'ERR_BATCH_REFUND_NO_BALANCE': case 'ERR_BATCH_CHANNEL_UNKNOWN': return p.t('bRefundNothing');
		case 'ERR_BATCH_PAYLOAD_INVALID': case 'ERR_BATCH_CHANNEL_MISMATCH': case 'ERR_BATCH_VOUCHER_INVALID':
		case 'ERR_BATCH_CUMULATIVE_MISMATCH': case 'ERR_BATCH_VERIFY_REJECTED':
			return p.t('paymentRefused');
		case 'ERR_BATCH_STORE': return p.t('generic');
		}
		return p.errorText(status, body, plan);
	}

	/* The batch offer of a 402 body. */
	function offerOf(body) {
		var list = body && body.accepts || [];
		for (var i = 0; i < list.length; i++)
			if (list[i] && list[i].scheme === 'batch-settlement')
				return list[i];
		return null;
	}

	/*
	 * The ceiling the router takes for the next purchase (docs/batch-settlement.md point 5): charged + price, and always
	 * above the last ceiling this browser signed (a voucher at or below it could be anyone's replay of it).
	 */
	function nextCeiling(rec, price) {
		var raised = BigInt(rec.charged) + price, floor = BigInt(rec.ceiling) + BigInt(1);
		return raised > floor ? raised : floor;
	}

	/*
	 * The base the router's corrective 402 tells (`chargedCumulativeAmount`: the charge, or the floor above the last
	 * ceiling), believed only when it agrees with what this browser signed: its last voucher is the router's
	 * (`voucherState`: that ceiling, that signature), and the base lies between the charge this browser knew and that
	 * ceiling, with base + price above it. Anything else (a router claiming more than was signed, a voucher this
	 * browser never sent, a router that forgot the last one) gets no signature: null.
	 */
	function resyncBase(rec, body, price) {
		var offer = offerOf(body), extra = offer && offer.extra || {}, state = extra.channelState, voucher = extra.voucherState;
		if (!state || !/^\d+$/.test(String(state.chargedCumulativeAmount)))
			return null;
		var base = BigInt(state.chargedCumulativeAmount), ceiling = BigInt(rec.ceiling);
		if (ceiling > ZERO) {
			if (!voucher || !sameVoucher(rec, voucher))
				return null;
			if (voucher.signature && rec.signature && String(voucher.signature).toLowerCase() !== rec.signature.toLowerCase())
				return null;
		}
		if (base < BigInt(rec.charged) || base > ceiling || base + price <= ceiling)
			return null;
		if (/^\d+$/.test(String(state.balance)))
			rec.balance = String(state.balance);
		return base;
	}

	/*
	 * Whether the router's latest voucher is this browser's last: its ceiling, or the one sent last whose answer never
	 * came (then it is adopted as the last).
	 */
	function sameVoucher(rec, voucher) {
		var ceiling = String(voucher.signedMaxClaimable !== undefined ? voucher.signedMaxClaimable : voucher.ceiling);
		if (ceiling === String(rec.ceiling))
			return true;
		if (rec.sent && ceiling === rec.sent.ceiling && (!voucher.signature || String(voucher.signature).toLowerCase() === rec.sent.signature.toLowerCase())) {
			rec.ceiling = rec.sent.ceiling;
			rec.signature = rec.sent.signature;
			return true;
		}
		return false;
	}

	/* The router's channel view disagrees with what this browser signed: nothing more is signed until it agrees. */
	var mismatch = false;

	/* The wallet on the offer's network, its account, and whether it holds `amount` (null: it cannot say). */
	function wallet(offer, amount, plan) {
		var eth = root.ethereum, from;
		if (!eth)
			return Promise.reject(new p.Refusal(p.t('noWallet') + ' ' + root.location.href));
		return eth.request({ method: 'eth_requestAccounts' }).then(function(accounts) {
			from = accounts[0];
			return eth.request({ method: 'eth_chainId' });
		}).then(function(chainHex) {
			var want;
			try { want = p.chainIdOf(offer.network); } catch (e) { throw new p.Refusal(e.message); }
			if (parseInt(chainHex, 16) !== want)
				return eth.request({ method: 'wallet_switchEthereumChain', params: [ { chainId: '0x' + want.toString(16) } ] });
		}).then(function() {
			return p.balanceOf(eth, offer.asset, from);
		}).then(function(balance) {
			if (balance !== null && balance < amount)
				throw new p.Refusal(p.t('insufficient', { currency: plan.currency, have: p.price(balance.toString(), plan), price: p.price(amount.toString(), plan) }));
			return from;
		});
	}

	/*
	 * One purchase: a voucher alone when this browser's channel holds enough, else a deposit of what is missing (the
	 * wallet's one prompt). A stale charged amount (the last session's metered price, which only the router knows) is
	 * re-synced from the corrective 402 and signed again, once.
	 */
	function pay(plan, steps) {
		var C = client();
		if (!C)
			return Promise.reject(new p.Refusal(p.t('bNoClient')));
		var conflict = p.conflictOf(p.known(), plan);
		if (conflict)
			return Promise.reject(new p.Refusal(conflict));
		if (mismatch)
			return Promise.reject(new p.Refusal(p.t('bMismatch')));
		var path = '/buy?plan=' + encodeURIComponent(plan.id) + '&steps=' + encodeURIComponent(String(steps));
		var offer, resource, rec;
		p.say(p.t('askingPrice'));
		return p.getJson(path).then(function(r) {
			offer = r.status === 402 ? offerOf(r.body) : null;
			if (!offer)
				throw new p.Refusal(errorText(r.status, r.body, plan));
			resource = r.body.resource;
			rec = load();
			if (rec && rec.network === offer.network && C.channelIdOf(C.channelConfig(offer, rec.config.payer, rec.key, rec.salt), offer.network) === rec.channelId)
				return fromStoredChannel();
			// A new channel: its key and salt are on the device before the wallet signs for it.
			var price = BigInt(offer.amount);
			return wallet(offer, price, plan).then(function(from) {
				var key = C.newVoucherKey(), salt = randomHex32();
				var config = C.channelConfig(offer, from, key, salt);
				rec = { key: key, salt: salt, config: config, network: offer.network, channelId: C.channelIdOf(config, offer.network), charged: '0', ceiling: '0', balance: '0',
					currency: plan.currency, decimals: plan.decimals };
				save(rec);
				return attempt(true, true);
			});
		});

		/*
		 * The stored channel's balance is as the router last told it, and a refund may have left the channel since (the
		 * session ended after the last refresh): the router is asked again, the purchase sized from its answer.
		 */
		function fromStoredChannel() {
			return refreshChannel().then(function() {
				if (mismatch)
					throw new p.Refusal(p.t('bMismatch'));
				rec = load();
				return attempt(true);
			});
		}

		/*
		 * This browser's signature of its last voucher, to compare with the router's copy: a record kept before it was
		 * stored signs it again (the same bytes: the signature is deterministic; nothing is sent).
		 */
		function ownSignature(C) {
			if (rec.signature || rec.ceiling === '0')
				return Promise.resolve();
			return C.voucherPayment(offer, resource, rec.config, String(rec.ceiling), rec.key).then(function(payload) {
				rec.signature = payload.payload.voucher.signature;
			});
		}

		/*
		 * A deposit whose answer did not come (504 ERR_BATCH_DEPOSIT_PENDING, or the router unreachable) is kept and
		 * sent again as it is, never signed anew: its ERC-3009 nonce lands once, so a retry cannot deposit twice.
		 */
		function attempt(mayResync, walletReady, base) {
			var price = BigInt(offer.amount), ceiling = base !== undefined ? base + price : nextCeiling(rec, price), missing = ceiling - BigInt(rec.balance);
			var signed, resend = rec.pending && rec.pending.path === path ? rec.pending : null;
			if (rec.pending && !resend)
				delete rec.pending; // another purchase now: what that deposit did, the router's channel state will say
			if (resend) {
				ceiling = BigInt(resend.ceiling);
				signed = Promise.resolve(resend.header);
			}
			else if (missing > ZERO) {
				// A new channel's wallet was just asked for its account and balance (the price, which is what is missing).
				signed = (walletReady ? Promise.resolve() : wallet(offer, missing, plan)).then(function() {
					p.say(p.t('bConfirmDeposit'));
					return C.depositPayment(root.ethereum, offer, resource, rec.config, missing.toString(), ceiling.toString(), rec.key);
				}).then(function(payload) {
					rec.pending = { path: path, ceiling: ceiling.toString(), signature: payload.payload.voucher.signature, header: p.encodeHeader(payload) };
					rec.sent = { ceiling: ceiling.toString(), signature: payload.payload.voucher.signature };
					save(rec);
					return rec.pending.header;
				});
			}
			else
				signed = C.voucherPayment(offer, resource, rec.config, ceiling.toString(), rec.key).then(function(payload) {
					// Kept before it goes: an answer lost on the way leaves the router holding it as this browser's last.
					rec.sent = { ceiling: ceiling.toString(), signature: payload.payload.voucher.signature };
					save(rec);
					return p.encodeHeader(payload);
				});
			return signed.then(function(header) {
				p.say(p.t('paying'));
				return p.getJson(path, { headers: { 'PAYMENT-SIGNATURE': header } });
			}).then(function(r) {
				if (r.status !== 504)
					delete rec.pending;
				if (r.status === 200) {
					rec.ceiling = ceiling.toString();
					if (rec.sent && rec.sent.ceiling === rec.ceiling)
						rec.signature = rec.sent.signature;
					delete rec.sent;
					rec.balance = max(BigInt(rec.balance), ceiling).toString();
					save(rec);
					return p.done(r).then(refreshChannel);
				}
				save(rec);
				if (r.status === 402 && r.body && r.body.error === MISMATCH && mayResync) {
					return ownSignature(C).then(function() {
						var base = resyncBase(rec, r.body, price);
						if (base === null)
							throw new p.Refusal(p.t('bMismatch'));
						save(rec);
						return attempt(false, false, base);
					});
				}
				throw new p.Refusal(errorText(r.status, r.body, plan));
			});
		}
	}

	/* The line under a plan: the deposit it takes (the price of the steps chosen) and a button. */
	function offer(plan, stepsInput, canPay) {
		var box = root.document.createElement('div');
		box.className = 'batch';
		var line = root.document.createElement('div');
		line.className = 'plan-price';
		var button = root.document.createElement('button'), busy = false;
		function update() {
			var n = Number(stepsInput.value), v = p.planView(plan);
			var ok = Math.floor(n) === n && n >= v.minSteps && n <= v.maxSteps, rec = load();
			var price = ok ? BigInt(plan.price_per_step) * BigInt(n) : null;
			line.textContent = ok ? p.t('bOffer', { deposit: p.price(price.toString(), plan) }) : '';
			// "Pay from my deposit" only when what is left in it covers the price: else pay() asks the wallet for a
			// deposit, and the button must not promise otherwise (after a refund nothing is left).
			var covered = !!rec && price !== null && BigInt(rec.balance || '0') >= nextCeiling({ charged: rec.charged || '0', ceiling: rec.ceiling || '0' }, price);
			button.textContent = p.t(covered ? 'bPayAgain' : 'bPay');
			button.disabled = busy || !ok || !client() || !(canPay || rec);
		}
		updaters.push(update);
		stepsInput.addEventListener('input', update);
		button.addEventListener('click', function() {
			busy = button.disabled = true;
			api.pending = pay(plan, Number(stepsInput.value)).catch(function(e) {
				p.say(p.failureText(e), 'error');
			}).then(function() { busy = false; update(); });
		});
		update();
		box.appendChild(line);
		box.appendChild(button);
		return box;
	}

	/* ---- the channel box: charged so far, the ceiling, what comes back, the refund ---- */

	/* An amount of the channel's token, in the currency and decimals of the plan it was opened for. */
	function plainPrice(value) {
		var rec = load() || {};
		return p.price(String(value), { currency: rec.currency, decimals: rec.decimals });
	}

	function renderChannel() {
		var box = root.document.getElementById('channel');
		if (!box)
			return;
		var c = channelView;
		box.textContent = '';
		if (!c) {
			box.hidden = true;
			return;
		}
		var refund = c.refund || { state: 'none' }, line = root.document.createElement('div');
		// The ceiling matters only while access runs; after a refund the channel's balance is what was charged, which
		// "Your deposit: …" would misstate: the customer is told what they paid and what came back.
		var words = c.session_open ? 'bChannel' : refund.state === 'done' ? 'bChannelPaid' : 'bChannelEnded';
		line.textContent = p.t(words, { balance: plainPrice(c.balance), charged: plainPrice(c.charged), ceiling: plainPrice(c.ceiling) });
		box.appendChild(line);
		var more = root.document.createElement('div');
		if (refund.state === 'done')
			more.textContent = p.t('bRefundDone', { amount: plainPrice(refund.amount) });
		else if (refund.state === 'requested')
			more.textContent = p.t('bRefundRequested');
		else if (BigInt(c.available || '0') > ZERO)
			more.textContent = p.t('bAvailable', { available: plainPrice(c.available) });
		if (more.textContent)
			box.appendChild(more);
		if (mismatch) {
			var warn = root.document.createElement('div');
			warn.textContent = p.t('bMismatch');
			box.appendChild(warn);
		}
		if (refund.state === 'none' && !c.session_open && BigInt(c.available || '0') > ZERO) {
			var button = root.document.createElement('button');
			button.textContent = p.t('bRefundAsk');
			button.addEventListener('click', function() {
				button.disabled = true;
				api.pending = askRefund().catch(function(e) { p.say(p.failureText(e), 'error'); }).then(renderChannel);
			});
			box.appendChild(button);
		}
		box.hidden = false;
	}

	/* What the router says of this browser's channel (404: it knows none, e.g. the deposit never landed). */
	function refreshChannel() {
		var rec = load();
		if (!rec)
			return Promise.resolve();
		return p.getJson('/batch/channel?id=' + encodeURIComponent(rec.channelId)).then(function(r) {
			if (r.status === 200 && r.body && r.body.channel_id) {
				channelView = r.body;
				// The router's charge is believed within what this browser signed, and its ceiling must be this browser's
				// last voucher's (or the one whose answer was lost): else nothing more is signed (bMismatch).
				var known = /^\d+$/.test(String(r.body.charged)) && /^\d+$/.test(String(r.body.ceiling));
				mismatch = !known || !sameVoucher(rec, { ceiling: r.body.ceiling })
					|| BigInt(r.body.charged) < BigInt(rec.charged) || BigInt(r.body.charged) > BigInt(rec.ceiling);
				if (!mismatch)
					rec.charged = String(r.body.charged);
				if (/^\d+$/.test(String(r.body.balance)))
					rec.balance = String(r.body.balance);
				save(rec);
			}
			else if (r.status === 404)
				channelView = null;
			renderChannel();
			updaters.forEach(function(u) { u(); });
		}).catch(function() { /* unreachable: the box keeps what it showed */ });
	}

	/* The spec's refund request (POST /batch/refund {payload}): a voucher at what was charged, signed by this browser's key (the router's proof). */
	function askRefund() {
		var rec = load(), C = client();
		if (!rec || !C || !channelView)
			return Promise.reject(new p.Refusal(p.t('bRefundNothing')));
		if (channelView.session_open)
			return Promise.reject(new p.Refusal(p.t('bRefundBusy')));
		var offer = { scheme: 'batch-settlement', network: rec.network, asset: rec.config.token, amount: '0', payTo: rec.config.receiver, maxTimeoutSeconds: 3600,
			extra: { receiverAuthorizer: rec.config.receiverAuthorizer, withdrawDelay: rec.config.withdrawDelay } };
		return C.refundPayment(offer, undefined, rec.config, String(channelView.charged), rec.key).then(function(payload) {
			return p.getJson('/batch/refund', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ payload: payload }) });
		}).then(function(r) {
			if (r.status === 200 || r.status === 202) {
				if (r.body && r.body.channel_id)
					channelView = r.body;
				p.say(p.t(r.status === 200 && channelView.refund && channelView.refund.state === 'done' ? 'bRefundDone' : 'bRefundRequested',
					{ amount: plainPrice(channelView.refund && channelView.refund.amount || '0') }), 'ok');
				return;
			}
			if (r.status === 409 && p.errorCode(r.body) === 'ERR_BATCH_CHANNEL_BUSY')
				throw new p.Refusal(p.t('bRefundBusy'));
			throw new p.Refusal(errorText(r.status, r.body));
		});
	}

	/* Called by portal.js once its helpers exist: the words join its tables; the channel box starts following. */
	function attach(helpers) {
		p = helpers;
		for (var lang in WORDS)
			if (p.MESSAGES[lang])
				for (var k in WORDS[lang])
					p.MESSAGES[lang][k] = WORDS[lang][k];
		root.setInterval(refreshChannel, 30000);
		return refreshChannel();
	}

	/* `pending`: what the last click started (a payment or a refund request), for a test to await. */
	var api = { WORDS: WORDS, attach: attach, offer: offer, pay: pay, refreshChannel: refreshChannel, askRefund: askRefund, STORE_KEY: STORE_KEY, pending: null };
	root.SluiceBatchPage = api;
})(typeof window !== 'undefined' ? window : globalThis);
