/*
 * sluice's pay page (served by the LAN x402 endpoint at /portal; openNDS's splash links here). Plain browser JS, no
 * library, no build step: the plans come from GET /, a browser wallet (window.ethereum, EIP-1193) signs the x402
 * `exact` payment (an EIP-3009 transferWithAuthorization as EIP-712 typed data, eth_signTypedData_v4), and GET /buy
 * carries it in PAYMENT-SIGNATURE, as any x402 v2 client would. A voucher goes to POST /voucher.
 * Every word a customer reads comes from MESSAGES in the browser's language (navigator.languages); numbers and prices
 * are formatted with Intl for it. The router's error codes are mapped to those words here: its technical reasons go
 * to the router's log, never onto the page.
 * The pure part (SluicePortal.*) is what test/http/portal.test.ts runs against a real daemon; the DOM part is run by
 * test/http/pay-page.test.ts with a small stand-in for the document.
 */
(function(root) {
	'use strict';

	/* ---- words ---- */

	var MESSAGES = {
		en: {
			title: 'WiFi access', loading: 'Loading the plans…', choose: 'Choose a plan.', nothing: 'Nothing is for sale right now.',
			enterVoucher: 'Enter your voucher below.',
			buyWallet: 'Buy with a crypto wallet', haveVoucher: 'Have a voucher?',
			noWallet: 'No browser wallet found. Open this page in your wallet app\'s browser:',
			noWalletVoucher: 'Or use a voucher below.',
			voucherCode: 'Voucher code', voucherPassword: 'Password (if your voucher has one)', useVoucher: 'Use voucher',
			howMany: 'How many', payWallet: 'Pay with wallet', notCrypto: '(not sold for crypto here)',
			per: '{price} per {amount}', total: '{amount} for {price}', chooseRange: 'Choose {min} to {max}',
			askingPrice: 'Asking the router for the price…', confirmWallet: 'Confirm the payment in your wallet…',
			paying: 'Paying…', checkingVoucher: 'Checking the voucher…',
			paidPending: 'Paid. Your access starts as soon as the router lets your device through (a few seconds).',
			paidOnline: 'Paid. You are online: {amount}.',
			welcomeBack: 'Welcome back. Your session is on this device again.',
			toppedUp: 'Added {added}. You now have {left} left in total.',
			stateActive: 'Your access is active: {left} left of {total}.', statePending: 'Your access is starting: {left} left of {total}.',
			stateExpired: 'Your access is used up.', stateEnded: 'Your access has ended.',
			rateLimited: 'Too many attempts from this device. Please wait a minute, then try again.',
			guessLimit: 'Too many wrong voucher codes right now. Your code is sent again in {seconds} s: please keep this page open.',
			voucherUsed: 'This voucher was already used: each one works once. If it was used on this device, your access is shown above.',
			notOnPortal: 'This device is not signed in to the WiFi right now. Switch WiFi off and on again (or rejoin the network), then open this page again.',
			venueElsewhere: 'Your session is active at another WiFi point of this venue. It moves here by itself once your device has left the other one: keep this page open.', venueArrived: 'Your session moved here: you are online.',
			ambiguous: 'The router cannot tell your device apart from another one. Please rejoin the WiFi and try again.',
			metricMismatch: 'You already have {kind} running. Buy more {kind}, or wait until it ends to buy this plan.',
			kindTime: 'time', kindData: 'data',
			validFor: 'valid for {time}',
			tryFreeTitle: 'Try it free', tryFree: 'Start my free trial', trialOffer: '{amount} free, once every {every} per device.', trialStarted: 'Your free trial has started: {amount}.', trialUsed: 'This device has had its free trial. The next one from {time}.', timeLeft: 'Time left to use it: {left}.',
			paymentRefused: 'The payment did not go through and nothing was charged. Please check your wallet and try again.',
			insufficient: 'Your wallet does not hold enough {currency} for this: it has {have}, this costs {price}. Nothing was charged.',
			facilitatorDown: 'Payments cannot be confirmed right now. Nothing was charged. Please try again in a few minutes.',
			settlementPending: 'Your payment is still being confirmed. Please wait a minute and reload this page before paying again.',
			replayed: 'This payment was already used. Your access is shown above.',
			voucherRejected: 'This voucher was not accepted. Please check the code and the password.',
			voucherInvalid: 'Please type the voucher code (and its password, if it has one).',
			vouchersOff: 'This router does not take vouchers.',
			upstreamDown: 'Vouchers cannot be checked right now. Please try again in a few minutes.',
			trialsTaken: 'All free trials are taken for now. The next one from {time}.', methodUnavailable: 'This way of paying is out of service on this router right now. Please choose another one or ask the staff.',
			walletCancelled: 'You cancelled in your wallet. Nothing was paid.',
			wrongNetwork: 'This router takes payments on a network your browser wallet cannot use.',
			planGone: 'This plan is no longer sold. Please reload the page.',
			badAmount: 'Please choose another amount.',
			unreachable: 'The router did not answer. Check that you are still on the WiFi, then try again.',
			generic: 'Something went wrong. Please try again, or ask the staff for help.'
		},
		de: {
			title: 'WLAN-Zugang', loading: 'Tarife werden geladen…', choose: 'Wählen Sie einen Tarif.', nothing: 'Im Moment wird nichts angeboten.',
			enterVoucher: 'Geben Sie unten Ihren Gutschein ein.',
			buyWallet: 'Mit einer Krypto-Wallet kaufen', haveVoucher: 'Haben Sie einen Gutschein?',
			noWallet: 'Keine Browser-Wallet gefunden. Öffnen Sie diese Seite im Browser Ihrer Wallet-App:',
			noWalletVoucher: 'Oder lösen Sie unten einen Gutschein ein.',
			voucherCode: 'Gutscheincode', voucherPassword: 'Passwort (falls Ihr Gutschein eines hat)', useVoucher: 'Gutschein einlösen',
			howMany: 'Anzahl', payWallet: 'Mit Wallet bezahlen', notCrypto: '(hier nicht mit Krypto erhältlich)',
			per: '{price} pro {amount}', total: '{amount} für {price}', chooseRange: 'Wählen Sie {min} bis {max}',
			askingPrice: 'Preis wird beim Router erfragt…', confirmWallet: 'Bestätigen Sie die Zahlung in Ihrer Wallet…',
			paying: 'Zahlung läuft…', checkingVoucher: 'Gutschein wird geprüft…',
			paidPending: 'Bezahlt. Ihr Zugang beginnt, sobald der Router Ihr Gerät freischaltet (wenige Sekunden).',
			paidOnline: 'Bezahlt. Sie sind online: {amount}.',
			welcomeBack: 'Willkommen zurück. Ihre Sitzung ist wieder auf diesem Gerät.',
			toppedUp: '{added} hinzugefügt. Sie haben jetzt insgesamt noch {left}.',
			stateActive: 'Ihr Zugang ist aktiv: noch {left} von {total}.', statePending: 'Ihr Zugang startet: noch {left} von {total}.',
			stateExpired: 'Ihr Zugang ist aufgebraucht.', stateEnded: 'Ihr Zugang ist beendet.',
			rateLimited: 'Zu viele Versuche von diesem Gerät. Bitte warten Sie eine Minute und versuchen Sie es dann erneut.',
			guessLimit: 'Gerade zu viele falsche Gutscheincodes. Ihr Code wird in {seconds} s erneut gesendet: bitte lassen Sie diese Seite offen.',
			voucherUsed: 'Dieser Gutschein wurde bereits eingelöst: jeder gilt nur einmal. Wurde er auf diesem Gerät eingelöst, sehen Sie Ihren Zugang oben.',
			notOnPortal: 'Dieses Gerät ist gerade nicht im WLAN angemeldet. Schalten Sie das WLAN aus und wieder ein (oder verbinden Sie sich neu) und öffnen Sie diese Seite erneut.',
			venueElsewhere: 'Ihre Sitzung ist an einem anderen WLAN-Punkt dieses Ortes aktiv. Sie wechselt von selbst hierher, sobald Ihr Gerät den anderen verlassen hat: Lassen Sie diese Seite offen.', venueArrived: 'Ihre Sitzung ist hierher gewechselt: Sie sind online.',
			ambiguous: 'Der Router kann Ihr Gerät nicht von einem anderen unterscheiden. Bitte verbinden Sie sich neu mit dem WLAN.',
			metricMismatch: 'Sie haben bereits {kind} gebucht. Kaufen Sie mehr {kind} oder warten Sie, bis es abläuft.',
			kindTime: 'Zeit', kindData: 'Datenvolumen',
			validFor: 'gültig für {time}',
			tryFreeTitle: 'Gratis testen', tryFree: 'Gratis-Test starten', trialOffer: '{amount} gratis, einmal alle {every} pro Gerät.', trialStarted: 'Ihr Gratis-Test hat begonnen: {amount}.', trialUsed: 'Dieses Gerät hatte seinen Gratis-Test schon. Der nächste ab {time}.', timeLeft: 'Noch {left}, um es zu nutzen.',
			paymentRefused: 'Die Zahlung ist nicht durchgegangen, es wurde nichts abgebucht. Bitte prüfen Sie Ihre Wallet und versuchen Sie es erneut.',
			insufficient: 'Ihre Wallet enthält nicht genug {currency}: {have} vorhanden, {price} nötig. Es wurde nichts abgebucht.',
			facilitatorDown: 'Zahlungen können gerade nicht bestätigt werden. Es wurde nichts abgebucht. Bitte versuchen Sie es in einigen Minuten erneut.',
			settlementPending: 'Ihre Zahlung wird noch bestätigt. Bitte warten Sie eine Minute und laden Sie die Seite neu, bevor Sie erneut zahlen.',
			replayed: 'Diese Zahlung wurde bereits verwendet. Ihr Zugang wird oben angezeigt.',
			voucherRejected: 'Dieser Gutschein wurde nicht angenommen. Bitte prüfen Sie Code und Passwort.',
			voucherInvalid: 'Bitte geben Sie den Gutscheincode ein (und das Passwort, falls vorhanden).',
			vouchersOff: 'Dieser Router nimmt keine Gutscheine an.',
			upstreamDown: 'Gutscheine können gerade nicht geprüft werden. Bitte versuchen Sie es in einigen Minuten erneut.',
			trialsTaken: 'Alle Gratis-Tests sind vorerst vergeben. Der nächste ab {time}.', methodUnavailable: 'Diese Zahlungsart ist auf diesem Router gerade außer Betrieb. Bitte wählen Sie eine andere oder fragen Sie das Personal.',
			walletCancelled: 'Sie haben in Ihrer Wallet abgebrochen. Es wurde nichts bezahlt.',
			wrongNetwork: 'Dieser Router nimmt Zahlungen in einem Netzwerk an, das Ihre Browser-Wallet nicht nutzen kann.',
			planGone: 'Dieser Tarif wird nicht mehr angeboten. Bitte laden Sie die Seite neu.',
			badAmount: 'Bitte wählen Sie eine andere Menge.',
			unreachable: 'Der Router antwortet nicht. Prüfen Sie, ob Sie noch im WLAN sind, und versuchen Sie es erneut.',
			generic: 'Etwas ist schiefgelaufen. Bitte versuchen Sie es erneut oder fragen Sie das Personal.'
		},
		es: {
			title: 'Acceso WiFi', loading: 'Cargando los planes…', choose: 'Elija un plan.', nothing: 'Ahora mismo no hay nada a la venta.',
			enterVoucher: 'Escriba su bono abajo.',
			buyWallet: 'Comprar con un monedero cripto', haveVoucher: '¿Tiene un bono?',
			noWallet: 'No se encontró un monedero en el navegador. Abra esta página en el navegador de su app de monedero:',
			noWalletVoucher: 'O use un bono más abajo.',
			voucherCode: 'Código del bono', voucherPassword: 'Contraseña (si su bono tiene una)', useVoucher: 'Usar bono',
			howMany: 'Cantidad', payWallet: 'Pagar con el monedero', notCrypto: '(aquí no se vende con cripto)',
			per: '{price} por {amount}', total: '{amount} por {price}', chooseRange: 'Elija de {min} a {max}',
			askingPrice: 'Consultando el precio al router…', confirmWallet: 'Confirme el pago en su monedero…',
			paying: 'Pagando…', checkingVoucher: 'Comprobando el bono…',
			paidPending: 'Pagado. Su acceso empieza en cuanto el router deje pasar su dispositivo (unos segundos).',
			paidOnline: 'Pagado. Ya está conectado: {amount}.',
			welcomeBack: 'Bienvenido de nuevo. Su sesión vuelve a estar en este dispositivo.',
			toppedUp: 'Se añadieron {added}. Ahora le quedan {left} en total.',
			stateActive: 'Su acceso está activo: quedan {left} de {total}.', statePending: 'Su acceso está empezando: quedan {left} de {total}.',
			stateExpired: 'Su acceso se ha agotado.', stateEnded: 'Su acceso ha terminado.',
			rateLimited: 'Demasiados intentos desde este dispositivo. Espere un minuto y vuelva a intentarlo.',
			guessLimit: 'Demasiados códigos de bono incorrectos ahora mismo. Su código se enviará de nuevo en {seconds} s: deje esta página abierta.',
			voucherUsed: 'Este bono ya se usó: cada uno sirve una sola vez. Si se usó en este dispositivo, su acceso se muestra arriba.',
			notOnPortal: 'Este dispositivo no está conectado al WiFi ahora mismo. Apague y encienda el WiFi (o vuelva a unirse a la red) y abra esta página de nuevo.',
			venueElsewhere: 'Su sesión está activa en otro punto WiFi de este lugar. Pasa aquí sola en cuanto su dispositivo deje el otro: mantenga esta página abierta.', venueArrived: 'Su sesión pasó aquí: está conectado.',
			ambiguous: 'El router no puede distinguir su dispositivo de otro. Vuelva a unirse al WiFi e inténtelo de nuevo.',
			metricMismatch: 'Ya tiene {kind} en curso. Compre más {kind} o espere a que termine.',
			kindTime: 'tiempo', kindData: 'datos',
			validFor: 'válido durante {time}',
			tryFreeTitle: 'Pruébelo gratis', tryFree: 'Empezar mi prueba gratis', trialOffer: '{amount} gratis, una vez cada {every} por dispositivo.', trialStarted: 'Su prueba gratis ha empezado: {amount}.', trialUsed: 'Este dispositivo ya tuvo su prueba gratis. La próxima desde {time}.', timeLeft: 'Tiempo para usarlo: {left}.',
			paymentRefused: 'El pago no se completó y no se cobró nada. Revise su monedero y vuelva a intentarlo.',
			insufficient: 'Su monedero no tiene suficiente {currency}: tiene {have} y esto cuesta {price}. No se cobró nada.',
			facilitatorDown: 'Ahora no se pueden confirmar pagos. No se cobró nada. Vuelva a intentarlo en unos minutos.',
			settlementPending: 'Su pago aún se está confirmando. Espere un minuto y recargue la página antes de pagar otra vez.',
			replayed: 'Este pago ya se usó. Su acceso se muestra arriba.',
			voucherRejected: 'Este bono no fue aceptado. Revise el código y la contraseña.',
			voucherInvalid: 'Escriba el código del bono (y su contraseña, si tiene una).',
			vouchersOff: 'Este router no acepta bonos.',
			upstreamDown: 'Ahora no se pueden comprobar bonos. Vuelva a intentarlo en unos minutos.',
			trialsTaken: 'Por ahora no quedan pruebas gratis. La próxima desde {time}.', methodUnavailable: 'Esta forma de pago no funciona ahora en este router. Elija otra o pregunte al personal.',
			walletCancelled: 'Canceló en su monedero. No se pagó nada.',
			wrongNetwork: 'Este router cobra en una red que su monedero del navegador no puede usar.',
			planGone: 'Este plan ya no está a la venta. Recargue la página.',
			badAmount: 'Elija otra cantidad.',
			unreachable: 'El router no responde. Compruebe que sigue en el WiFi y vuelva a intentarlo.',
			generic: 'Algo salió mal. Vuelva a intentarlo o pida ayuda al personal.'
		},
		fr: {
			title: 'Accès WiFi', loading: 'Chargement des offres…', choose: 'Choisissez une offre.', nothing: 'Rien n\'est en vente pour le moment.',
			enterVoucher: 'Saisissez votre bon ci-dessous.',
			buyWallet: 'Acheter avec un portefeuille crypto', haveVoucher: 'Vous avez un bon ?',
			noWallet: 'Aucun portefeuille trouvé dans le navigateur. Ouvrez cette page dans le navigateur de votre application de portefeuille :',
			noWalletVoucher: 'Ou utilisez un bon ci-dessous.',
			voucherCode: 'Code du bon', voucherPassword: 'Mot de passe (si votre bon en a un)', useVoucher: 'Utiliser le bon',
			howMany: 'Quantité', payWallet: 'Payer avec le portefeuille', notCrypto: '(pas vendu en crypto ici)',
			per: '{price} par {amount}', total: '{amount} pour {price}', chooseRange: 'Choisissez de {min} à {max}',
			askingPrice: 'Demande du prix au routeur…', confirmWallet: 'Confirmez le paiement dans votre portefeuille…',
			paying: 'Paiement en cours…', checkingVoucher: 'Vérification du bon…',
			paidPending: 'Payé. Votre accès commence dès que le routeur laisse passer votre appareil (quelques secondes).',
			paidOnline: 'Payé. Vous êtes en ligne : {amount}.',
			welcomeBack: 'Bon retour. Votre session est de nouveau sur cet appareil.',
			toppedUp: '{added} ajouté. Il vous reste {left} au total.',
			stateActive: 'Votre accès est actif : il reste {left} sur {total}.', statePending: 'Votre accès démarre : il reste {left} sur {total}.',
			stateExpired: 'Votre accès est épuisé.', stateEnded: 'Votre accès est terminé.',
			rateLimited: 'Trop de tentatives depuis cet appareil. Patientez une minute, puis réessayez.',
			guessLimit: 'Trop de codes de bon erronés en ce moment. Votre code sera renvoyé dans {seconds} s : gardez cette page ouverte.',
			voucherUsed: 'Ce bon a déjà été utilisé : chacun ne sert qu\'une fois. S\'il a été utilisé sur cet appareil, votre accès est affiché ci-dessus.',
			notOnPortal: 'Cet appareil n\'est pas connecté au WiFi en ce moment. Désactivez puis réactivez le WiFi (ou rejoignez le réseau), puis rouvrez cette page.',
			venueElsewhere: 'Votre session est active sur un autre point WiFi de ce lieu. Elle passe ici d\'elle-même dès que votre appareil a quitté l\'autre : gardez cette page ouverte.', venueArrived: 'Votre session est passée ici : vous êtes en ligne.',
			ambiguous: 'Le routeur ne distingue pas votre appareil d\'un autre. Rejoignez le WiFi à nouveau et réessayez.',
			metricMismatch: 'Vous avez déjà du {kind} en cours. Achetez plus de {kind} ou attendez qu\'il se termine.',
			kindTime: 'temps', kindData: 'volume de données',
			validFor: 'valable {time}',
			tryFreeTitle: 'Essayez gratuitement', tryFree: 'Commencer mon essai gratuit', trialOffer: '{amount} gratuits, une fois tous les {every} par appareil.', trialStarted: 'Votre essai gratuit a commencé : {amount}.', trialUsed: 'Cet appareil a déjà eu son essai gratuit. Le prochain à partir de {time}.', timeLeft: 'Temps restant pour l’utiliser : {left}.',
			paymentRefused: 'Le paiement n\'est pas passé et rien n\'a été débité. Vérifiez votre portefeuille et réessayez.',
			insufficient: 'Votre portefeuille ne contient pas assez de {currency} : {have} disponible, {price} nécessaire. Rien n\'a été débité.',
			facilitatorDown: 'Les paiements ne peuvent pas être confirmés pour le moment. Rien n\'a été débité. Réessayez dans quelques minutes.',
			settlementPending: 'Votre paiement est en cours de confirmation. Patientez une minute et rechargez la page avant de payer à nouveau.',
			replayed: 'Ce paiement a déjà été utilisé. Votre accès est affiché ci-dessus.',
			voucherRejected: 'Ce bon n\'a pas été accepté. Vérifiez le code et le mot de passe.',
			voucherInvalid: 'Saisissez le code du bon (et son mot de passe s\'il en a un).',
			vouchersOff: 'Ce routeur n\'accepte pas les bons.',
			upstreamDown: 'Les bons ne peuvent pas être vérifiés pour le moment. Réessayez dans quelques minutes.',
			trialsTaken: 'Tous les essais gratuits sont pris pour le moment. Le prochain à partir de {time}.', methodUnavailable: 'Ce moyen de paiement est hors service sur ce routeur pour le moment. Choisissez-en un autre ou demandez au personnel.',
			walletCancelled: 'Vous avez annulé dans votre portefeuille. Rien n\'a été payé.',
			wrongNetwork: 'Ce routeur encaisse sur un réseau que votre portefeuille de navigateur ne peut pas utiliser.',
			planGone: 'Cette offre n\'est plus en vente. Rechargez la page.',
			badAmount: 'Choisissez une autre quantité.',
			unreachable: 'Le routeur ne répond pas. Vérifiez que vous êtes toujours sur le WiFi, puis réessayez.',
			generic: 'Un problème est survenu. Réessayez ou demandez de l\'aide au personnel.'
		},
		pt: {
			title: 'Acesso WiFi', loading: 'Carregando os planos…', choose: 'Escolha um plano.', nothing: 'Nada está à venda no momento.',
			enterVoucher: 'Digite o seu voucher abaixo.',
			buyWallet: 'Comprar com uma carteira cripto', haveVoucher: 'Tem um voucher?',
			noWallet: 'Nenhuma carteira encontrada no navegador. Abra esta página no navegador do app da sua carteira:',
			noWalletVoucher: 'Ou use um voucher abaixo.',
			voucherCode: 'Código do voucher', voucherPassword: 'Senha (se o seu voucher tiver uma)', useVoucher: 'Usar voucher',
			howMany: 'Quantidade', payWallet: 'Pagar com a carteira', notCrypto: '(não vendido em cripto aqui)',
			per: '{price} por {amount}', total: '{amount} por {price}', chooseRange: 'Escolha de {min} a {max}',
			askingPrice: 'Consultando o preço no roteador…', confirmWallet: 'Confirme o pagamento na sua carteira…',
			paying: 'Pagando…', checkingVoucher: 'Verificando o voucher…',
			paidPending: 'Pago. Seu acesso começa assim que o roteador liberar o seu dispositivo (alguns segundos).',
			paidOnline: 'Pago. Você está online: {amount}.',
			welcomeBack: 'Bem-vindo de volta. Sua sessão está neste dispositivo novamente.',
			toppedUp: '{added} adicionado. Agora você tem {left} restantes no total.',
			stateActive: 'Seu acesso está ativo: restam {left} de {total}.', statePending: 'Seu acesso está começando: restam {left} de {total}.',
			stateExpired: 'Seu acesso acabou.', stateEnded: 'Seu acesso terminou.',
			rateLimited: 'Muitas tentativas deste dispositivo. Aguarde um minuto e tente novamente.',
			guessLimit: 'Muitos códigos de voucher errados agora. Seu código será enviado de novo em {seconds} s: mantenha esta página aberta.',
			voucherUsed: 'Este voucher já foi usado: cada um vale uma vez. Se foi usado neste dispositivo, seu acesso aparece acima.',
			notOnPortal: 'Este dispositivo não está conectado ao WiFi agora. Desligue e ligue o WiFi (ou entre na rede de novo) e abra esta página outra vez.',
			venueElsewhere: 'Sua sessão está ativa em outro ponto WiFi deste local. Ela passa para cá sozinha assim que seu dispositivo sair do outro: mantenha esta página aberta.', venueArrived: 'Sua sessão passou para cá: você está online.',
			ambiguous: 'O roteador não consegue distinguir o seu dispositivo de outro. Entre no WiFi de novo e tente outra vez.',
			metricMismatch: 'Você já tem {kind} em uso. Compre mais {kind} ou espere terminar.',
			kindTime: 'tempo', kindData: 'dados',
			validFor: 'válido por {time}',
			tryFreeTitle: 'Experimente grátis', tryFree: 'Começar meu teste grátis', trialOffer: '{amount} grátis, uma vez a cada {every} por dispositivo.', trialStarted: 'Seu teste grátis começou: {amount}.', trialUsed: 'Este dispositivo já teve seu teste grátis. O próximo a partir de {time}.', timeLeft: 'Tempo restante para usar: {left}.',
			paymentRefused: 'O pagamento não foi concluído e nada foi cobrado. Verifique sua carteira e tente novamente.',
			insufficient: 'Sua carteira não tem {currency} suficiente: tem {have}, isto custa {price}. Nada foi cobrado.',
			facilitatorDown: 'Os pagamentos não podem ser confirmados agora. Nada foi cobrado. Tente novamente em alguns minutos.',
			settlementPending: 'Seu pagamento ainda está sendo confirmado. Aguarde um minuto e recarregue a página antes de pagar de novo.',
			replayed: 'Este pagamento já foi usado. Seu acesso aparece acima.',
			voucherRejected: 'Este voucher não foi aceito. Verifique o código e a senha.',
			voucherInvalid: 'Digite o código do voucher (e a senha, se houver).',
			vouchersOff: 'Este roteador não aceita vouchers.',
			upstreamDown: 'Os vouchers não podem ser verificados agora. Tente novamente em alguns minutos.',
			trialsTaken: 'Os testes grátis acabaram por agora. O próximo a partir de {time}.', methodUnavailable: 'Esta forma de pagamento está fora de serviço neste roteador agora. Escolha outra ou fale com a equipe.',
			walletCancelled: 'Você cancelou na sua carteira. Nada foi pago.',
			wrongNetwork: 'Este roteador recebe pagamentos numa rede que a carteira do seu navegador não pode usar.',
			planGone: 'Este plano não está mais à venda. Recarregue a página.',
			badAmount: 'Escolha outra quantidade.',
			unreachable: 'O roteador não respondeu. Verifique se você ainda está no WiFi e tente novamente.',
			generic: 'Algo deu errado. Tente novamente ou peça ajuda à equipe.'
		}
	};

	/* The language in use: the first of the browser's that has a table (its full tag, e.g. pt-BR, for Intl). */
	var lang = 'en', locale = 'en';

	function setLanguages(languages) {
		lang = 'en';
		locale = 'en';
		var list = languages || [];
		for (var i = 0; i < list.length; i++) {
			var base = String(list[i]).toLowerCase().split('-')[0];
			if (MESSAGES[base]) {
				lang = base;
				locale = String(list[i]);
				try { Intl.NumberFormat.supportedLocalesOf([ locale ]); } catch (e) { locale = base; }
				return lang;
			}
		}
		return lang;
	}

	/* The message `key` with {name} filled from `args`. */
	function t(key, args) {
		var text = MESSAGES[lang][key] || MESSAGES.en[key] || key;
		return text.replace(/\{(\w+)\}/g, function(all, name) { return args && args[name] !== undefined ? String(args[name]) : all; });
	}

	/* ---- numbers ---- */

	/* An Intl.NumberFormat of the language in use, made once per options: making one costs many formats with it, and the
	   status box formats its time left every second. */
	var numberFormats = {};

	function numberFormat(options) {
		var key = locale + ' ' + JSON.stringify(options);
		return numberFormats[key] || (numberFormats[key] = new Intl.NumberFormat(locale, options));
	}

	/* A whole number or a decimal string ("1234.5") in the locale's digits and separators, every digit kept. */
	function formatNumber(text) {
		var m = /^(\d+)(?:\.(\d+))?$/.exec(String(text));
		if (!m || typeof Intl === 'undefined')
			return String(text);
		var nf = numberFormat({ maximumFractionDigits: 0 });
		var whole = typeof BigInt === 'function' ? nf.format(BigInt(m[1])) : nf.format(Number(m[1]));
		if (!m[2])
			return whole;
		var sep = '.';
		try {
			numberFormat({}).formatToParts(1.5).forEach(function(p) { if (p.type === 'decimal') sep = p.value; });
		} catch (e) { /* formatToParts is missing only in very old browsers: keep the dot */ }
		return whole + sep + m[2];
	}

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
		return formatNumber(formatUnits(value, plan.decimals)) + (plan.currency ? ' ' + plan.currency : '');
	}

	/* n of a time unit in the locale's short form ("2 hr", "2 Std.", "2 h"); the symbol where Intl has no units. */
	var TIME_UNITS = { d: 'day', h: 'hour', min: 'minute', s: 'second' };

	function unitText(n, unit) {
		if (TIME_UNITS[unit] && typeof Intl !== 'undefined') {
			try {
				return numberFormat({ style: 'unit', unit: TIME_UNITS[unit], unitDisplay: 'short', maximumFractionDigits: 1 }).format(n);
			} catch (e) { /* a browser without unit formatting */ }
		}
		var text = typeof Intl !== 'undefined' ? numberFormat({ maximumFractionDigits: 1 }).format(n) : String(n);
		return text + '\u00a0' + unit;
	}

	var BYTE_UNITS = [ [ 1099511627776, 'TiB' ], [ 1073741824, 'GiB' ], [ 1048576, 'MiB' ], [ 1024, 'KiB' ], [ 1, 'B' ] ];
	var TIME_STEPS = [ [ 86400, 'd' ], [ 3600, 'h' ], [ 60, 'min' ], [ 1, 's' ] ];

	/* "3600" seconds → "1 hr"; "1073741824" bytes → "1 GiB": the largest unit that divides the amount. */
	function amountText(metric, value) {
		var n = Number(value);
		var units = metric === 'bytes' ? BYTE_UNITS : TIME_STEPS;
		for (var i = 0; i < units.length; i++)
			if (n >= units[i][0] && n % units[i][0] === 0)
				return unitText(n / units[i][0], units[i][1]);
		return unitText(n, metric === 'bytes' ? 'B' : 's');
	}

	/* What is left, rounded for reading: "1 hr 59 min", "12 min", "1.5 GiB", "300 MiB". */
	function leftText(metric, value) {
		var n = Math.max(0, Number(value));
		if (metric === 'bytes') {
			for (var i = 0; i < BYTE_UNITS.length - 1; i++)
				if (n >= BYTE_UNITS[i][0])
					return unitText(Math.floor(n / BYTE_UNITS[i][0] * 10) / 10, BYTE_UNITS[i][1]);
			return unitText(n, 'B');
		}
		var d = Math.floor(n / 86400), h = Math.floor(n % 86400 / 3600), m = Math.floor(n % 3600 / 60);
		if (d > 0)
			return unitText(d, 'd') + (h ? ' ' + unitText(h, 'h') : '');
		if (h > 0)
			return unitText(h, 'h') + (m ? ' ' + unitText(m, 'min') : '');
		return m > 0 ? unitText(m, 'min') : unitText(n, 's');
	}

	/* ---- plans and sessions ---- */

	/* What a plan card shows; `payable` when the endpoint offered an x402 payment for it. */
	function planView(plan) {
		var minSteps = Number(plan.min_steps) || 1, maxSteps = Number(plan.max_steps) || minSteps;
		var name = String(plan.id);
		return {
			id: plan.id,
			// The admin's display_name as written, else the section name capitalized: the price line says time or data.
			title: plan.display_name ? String(plan.display_name) : name.charAt(0).toUpperCase() + name.slice(1),
			// A data plan with a time_limit: the data is also valid only that long (whichever ends first).
			priceText: t('per', { price: price(plan.price_per_step, plan), amount: amountText(plan.metric, plan.step_size) }) +
				(plan.time_limit ? ', ' + t('validFor', { time: amountText('seconds', plan.time_limit) }) : ''),
			minSteps: minSteps,
			maxSteps: maxSteps,
			payable: !!(plan.x402 && plan.x402.scheme === 'exact')
		};
	}

	/* "2 hr for 0.5 USDC" for `steps` steps of a plan. */
	function totalText(plan, steps) {
		var allotment = (BigInt(plan.step_size) * BigInt(steps)).toString();
		var total = (BigInt(plan.price_per_step) * BigInt(steps)).toString();
		return t('total', { amount: amountText(plan.metric, allotment), price: price(total, plan) });
	}

	function isLive(s) {
		return !!s && (s.state === 'ACTIVE' || s.state === 'PENDING');
	}

	/* A live session of the other metric cannot be topped up with this plan: known before anyone signs. */
	function conflictOf(session, plan) {
		if (!isLive(session) || session.metric === plan.metric)
			return null;
		return t('metricMismatch', { kind: t(session.metric === 'bytes' ? 'kindData' : 'kindTime') });
	}

	/*
	 * The session's status line; `elapsedSeconds` since it was fetched counts a time session down (the router's
	 * figure stays the truth: the page fetches it again now and then).
	 */
	function sessionText(s, elapsedSeconds) {
		if (!isLive(s))
			return t(s.state === 'EXPIRED' ? 'stateExpired' : 'stateEnded');
		var remaining = Number(s.remaining);
		if (s.metric !== 'bytes' && s.state === 'ACTIVE')
			remaining = Math.max(0, remaining - Math.floor(elapsedSeconds || 0));
		var text = t(s.state === 'ACTIVE' ? 'stateActive' : 'statePending', { left: leftText(s.metric, remaining), total: amountText(s.metric, s.allotment) });
		// Data with a deadline (a plan's time_limit, or a voucher's Session-Timeout): whichever comes first ends it.
		if (s.metric === 'bytes' && s.expires_at)
			text += ' ' + t('timeLeft', { left: leftText('seconds', Math.floor(Number(s.expires_at) - Date.now() / 1000)) });
		return text;
	}

	/* What a successful purchase says: a top-up names what was added and what there is now. */
	function purchaseText(body) {
		var s = body.session;
		// The same voucher typed on a new device: its session moved here, nothing was bought.
		if (body.restored)
			return t('welcomeBack');
		if (body.gate === 'pending' && !body.topped_up)
			return t('paidPending');
		if (body.topped_up)
			return t('toppedUp', { added: amountText(s.metric, body.added !== undefined ? body.added : s.allotment), left: leftText(s.metric, s.remaining) });
		return t('paidOnline', { amount: amountText(s.metric, body.added !== undefined ? body.added : s.allotment) });
	}

	/* The code of a failed answer: {error: {code}}, or an x402 402 body's `code`. */
	function errorCode(body) {
		if (body && body.error && typeof body.error === 'object')
			return body.error.code || null;
		if (body && typeof body.code === 'string')
			return body.code;
		if (body && typeof body.error === 'string') {
			var m = /^(ERR_[A-Z0-9_]+)/.exec(body.error);
			return m ? m[1] : null;
		}
		return null;
	}

	/* The wait a guess-limit refusal names (Retry-After, seconds): the router keeps the place that long and 30 s more. */
	function retryAfterOf(r) {
		var n = r && Number(r.retryAfter);
		return n > 0 && n < 3600 ? Math.ceil(n) : 60;
	}

	/* The customer's words for a failed answer. The router's own reason is in its log, with this device's MAC. */
	function errorText(status, body, plan, answer) {
		var code = errorCode(body);
		if (code === 'ERR_VOUCHER_GUESS_LIMIT')
			return t('guessLimit', { seconds: retryAfterOf(answer) });
		if (status === 429 || code === 'ERR_HTTP_RATE_LIMITED')
			return t('rateLimited');
		switch (code) {
		case 'ERR_HTTP_CLIENT_UNKNOWN': return t('notOnPortal');
		case 'ERR_VENUE_HELD_ELSEWHERE': return t('venueElsewhere');
		case 'ERR_HTTP_CLIENT_AMBIGUOUS': return t('ambiguous');
		case 'ERR_SESSION_METRIC_MISMATCH':
			return t('metricMismatch', { kind: t(plan && plan.metric === 'bytes' ? 'kindTime' : 'kindData') });
		case 'ERR_X402_FACILITATOR_UNAVAILABLE': case 'ERR_X402_BUSY': case 'ERR_X402_RPC_UNAVAILABLE': return t('facilitatorDown');
		case 'ERR_X402_SETTLEMENT_PENDING': case 'ERR_X402_SETTLEMENT_UNCONFIRMED': case 'ERR_PAYMENT_IN_PROGRESS': return t('settlementPending');
		case 'ERR_PAYMENT_REPLAYED': case 'ERR_X402_NONCE_REPLAYED': return t('replayed');
		case 'ERR_VOUCHER_REJECTED': return t('voucherRejected');
		case 'ERR_VOUCHER_INVALID': case 'ERR_VOUCHER_REQUEST_INVALID': return t('voucherInvalid');
		case 'ERR_UPSTREAM_UNAVAILABLE': return t('upstreamDown');
		case 'ERR_UNKNOWN_PLAN': return t('planGone');
		case 'ERR_PAYMENT_METHOD_UNAVAILABLE': return t('methodUnavailable');
		case 'ERR_INVALID_AMOUNT': case 'ERR_AMOUNT_TOO_SMALL': case 'ERR_AMOUNT_TOO_LARGE': return t('badAmount');
		}
		if (code && code.indexOf('ERR_X402_') === 0)
			return t('paymentRefused');
		return t('generic');
	}

	/* ---- the x402 payment ---- */

	/* "eip155:84532" → 84532. */
	function chainIdOf(network) {
		var m = /^eip155:(\d+)$/.exec(String(network));
		if (!m)
			throw new Error(t('wrongNetwork'));
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

	/* eth_call data for the token's balanceOf(owner) (selector 0x70a08231). */
	function balanceOfCall(owner) {
		return '0x70a08231' + new Array(25).join('0') + String(owner).replace(/^0x/i, '').toLowerCase();
	}

	var api = {
		MESSAGES: MESSAGES, setLanguages: setLanguages, t: t, formatNumber: formatNumber,
		formatUnits: formatUnits, amountText: amountText, leftText: leftText, planView: planView, totalText: totalText, chainIdOf: chainIdOf,
		typedData: typedData, paymentPayload: paymentPayload, encodeHeader: encodeHeader, randomNonce: randomNonce, balanceOfCall: balanceOfCall,
		errorCode: errorCode, errorText: errorText, sessionText: sessionText, purchaseText: purchaseText, conflictOf: conflictOf
	};
	root.SluicePortal = api;
	setLanguages(root.navigator && (root.navigator.languages || [ root.navigator.language ]));

	if (typeof document === 'undefined')
		return;

	/* ---- the page ---- */

	/* How often the status box asks the router again (the countdown runs every second in between). */
	var SESSION_REFRESH_MS = 30000;
	/* A status question that failed (the router busy or restarting, the WiFi flaky) is asked again this soon, not only at
	   the next refresh: a customer who sees no session might pay twice. */
	var SESSION_RETRY_MS = 3000;
	/* While this device's session is moving here from another router of the venue, the page asks this often. */
	var VENUE_RETRY_MS = 2000;
	var venueWaiting = false, venueAskedAt = 0;
	var sessionFailedAt = null;

	function $(id) { return document.getElementById(id); }

	function say(text, kind) {
		var m = $('message');
		m.textContent = text;
		m.className = kind || 'info';
	}

	/* A failure the customer reads: its text is already in their words. */
	function Refusal(text) {
		this.message = text;
	}

	function getJson(path, init) {
		return fetch(path, init || {}).then(function(res) {
			return res.text().then(function(text) {
				var body = null;
				try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
				return { status: res.status, body: body, retryAfter: Number(res.headers.get('retry-after')) || null };
			});
		}, function() {
			throw new Refusal(t('unreachable'));
		});
	}

	function failureText(e) {
		if (e instanceof Refusal)
			return e.message;
		// EIP-1193: 4001 is the customer saying no in the wallet.
		if (e && e.code === 4001)
			return t('walletCancelled');
		return t('generic');
	}

	/* The last session the router reported and when: the box counts down from it and keeps it through a 429. */
	var known = null, knownAt = 0, runOutAskedAt = -Infinity;
	/* A session run out here is asked about again at most this often (the router's tick may lag behind the clock). */
	var RUN_OUT_ASK_MS = 10000;

	/* Each plan card's refresh: a card whose plan cannot top up the live session says so instead of offering to pay. */
	var cardUpdates = [];

	function renderSession() {
		for (var i = 0; i < cardUpdates.length; i++)
			cardUpdates[i]();
		var box = $('session');
		if (!known) {
			box.hidden = true;
			return;
		}
		box.className = 'card';
		box.textContent = sessionText(known, (Date.now() - knownAt) / 1000);
		box.hidden = false;
	}

	/* The router's word on this device's session at another router of its venue (GET /session's `venue`). */
	function venueElsewhere(v) {
		return !!v && (v.state === 'held' || v.state === 'releasing' || (v.state === 'unreachable' && !!v.holder));
	}

	function showSession() {
		return getJson('/session').then(function(r) {
			var box = $('session');
			var venue = r.body && r.body.venue;
			var waited = venueWaiting;
			sessionFailedAt = r.status >= 500 ? Date.now() : null;
			// Moving here from another router of the venue (or not yet answered): the page asks again soon.
			venueWaiting = !!venue && (venue.state === 'asking' || venueElsewhere(venue));
			venueAskedAt = Date.now();
			if (r.status === 200 && r.body && r.body.session) {
				known = r.body.session;
				knownAt = Date.now();
				renderSession();
				if (waited && isLive(known))
					say(t('venueArrived'), 'ok');
			}
			else if (r.status === 404 && venueElsewhere(venue)) {
				known = null;
				renderSession();
				box.className = 'card notice';
				box.textContent = t('venueElsewhere');
				box.hidden = false;
			}
			else if (r.status === 429)
				renderSession(); // the last known session stays: hiding it could make a customer pay twice
			else if (errorCode(r.body) === 'ERR_HTTP_CLIENT_UNKNOWN') {
				// The portal forgot this device (a session ended, the phone slept): say how to come back.
				known = null;
				box.className = 'card notice';
				box.textContent = t('notOnPortal');
				box.hidden = false;
			}
			else if (r.status === 404) {
				known = null;
				renderSession();
			}
		}).catch(function() {
			// Unreachable: the box keeps what it showed, and the question is asked again soon.
			sessionFailedAt = Date.now();
		});
	}

	function tick() {
		if (venueWaiting && Date.now() - venueAskedAt >= VENUE_RETRY_MS) {
			venueAskedAt = Date.now();
			showSession();
		}
		if (sessionFailedAt !== null && Date.now() - sessionFailedAt >= SESSION_RETRY_MS) {
			sessionFailedAt = null;
			showSession();
		}
		// Data with a deadline: its time left counts down too (the data left changes only with a fetch).
		if (isLive(known) && known.metric === 'bytes' && known.expires_at && known.state === 'ACTIVE')
			renderSession();
		if (isLive(known) && known.metric !== 'bytes' && known.state === 'ACTIVE') {
			renderSession();
			// Run out here: ask the router what it says now (ended, or topped up meanwhile).
			if (Number(known.remaining) - (Date.now() - knownAt) / 1000 <= 0 && Date.now() - runOutAskedAt >= RUN_OUT_ASK_MS) {
				runOutAskedAt = Date.now();
				showSession();
			}
		}
	}

	function done(r) {
		say(purchaseText(r.body), 'ok');
		known = r.body.session;
		knownAt = Date.now();
		renderSession();
		return showSession();
	}

	/* The wallet's balance of the asset, or null when the wallet cannot say (then the router's answer will). */
	function balanceOf(eth, asset, owner) {
		return eth.request({ method: 'eth_call', params: [ { to: asset, data: balanceOfCall(owner) }, 'latest' ] }).then(function(hex) {
			return /^0x[0-9a-fA-F]+$/.test(String(hex)) ? BigInt(hex) : null;
		}, function() { return null; });
	}

	function pay(plan, steps) {
		var eth = root.ethereum, offer, from;
		var conflict = conflictOf(known, plan);
		if (conflict)
			return Promise.reject(new Refusal(conflict));
		var path = '/buy?plan=' + encodeURIComponent(plan.id) + '&steps=' + encodeURIComponent(String(steps));
		say(t('askingPrice'));
		return getJson(path).then(function(r) {
			if (r.status !== 402 || !r.body || !r.body.accepts || !r.body.accepts[0])
				throw new Refusal(errorText(r.status, r.body, plan));
			offer = r.body;
			say(t('confirmWallet'));
			return eth.request({ method: 'eth_requestAccounts' });
		}).then(function(accounts) {
			from = accounts[0];
			return eth.request({ method: 'eth_chainId' });
		}).then(function(chainHex) {
			var want;
			try { want = chainIdOf(offer.accepts[0].network); } catch (e) { throw new Refusal(e.message); }
			if (parseInt(chainHex, 16) === want)
				return null;
			return eth.request({ method: 'wallet_switchEthereumChain', params: [ { chainId: '0x' + want.toString(16) } ] });
		}).then(function() {
			return balanceOf(eth, offer.accepts[0].asset, from);
		}).then(function(balance) {
			var req = offer.accepts[0];
			// Known before the signature: a wallet that cannot cover the price is told so, and asked for nothing.
			if (balance !== null && balance < BigInt(req.amount))
				throw new Refusal(t('insufficient', { currency: plan.currency, have: price(balance.toString(), plan), price: price(req.amount, plan) }));
			var data = typedData(req, from, randomNonce(), Math.floor(Date.now() / 1000));
			return eth.request({ method: 'eth_signTypedData_v4', params: [ from, JSON.stringify(data) ] }).then(function(signature) {
				say(t('paying'));
				var header = encodeHeader(paymentPayload(req, offer.resource, data, signature));
				return getJson(path, { headers: { 'PAYMENT-SIGNATURE': header } });
			});
		}).then(function(r) {
			if (r.status !== 200)
				throw new Refusal(errorText(r.status, r.body, plan));
			return done(r);
		});
	}

	function planCard(plan, canPay) {
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
		button.textContent = t('payWallet');
		var busy = false;
		function update() {
			var n = Number(steps.value);
			var ok = Math.floor(n) === n && n >= v.minSteps && n <= v.maxSteps;
			// A live session of the other metric: this plan cannot add to it, so the card says why instead of a price.
			var conflict = conflictOf(known, plan);
			total.textContent = conflict || (ok ? totalText(plan, n) : t('chooseRange', { min: formatNumber(v.minSteps), max: formatNumber(v.maxSteps) }));
			button.disabled = busy || !!conflict || !ok || !v.payable || !canPay;
		}
		steps.addEventListener('input', update);
		button.addEventListener('click', function() {
			busy = true;
			update();
			pay(plan, Number(steps.value)).catch(function(e) {
				say(failureText(e), 'error');
			}).then(function() {
				busy = false;
				update();
			});
		});
		cardUpdates.push(update);
		update();

		var card = document.createElement('div');
		card.className = 'card plan';
		card.setAttribute('data-plan', v.id);
		var title = document.createElement('div');
		title.className = 'plan-title';
		title.textContent = v.title;
		var priceLine = document.createElement('div');
		priceLine.className = 'plan-price';
		// batch-settlement (batch-page.js): "deposit, pay for what you use", beside the prepaid price.
		var batch = root.SluiceBatchPage && plan.batch_settlement ? root.SluiceBatchPage.offer(plan, steps, canPay) : null;
		priceLine.textContent = v.priceText + (v.payable || batch ? '' : ' ' + t('notCrypto'));
		var label = document.createElement('label');
		label.textContent = t('howMany');
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
		if (v.payable)
			card.appendChild(button);
		if (batch)
			card.appendChild(batch);
		return card;
	}

	/* The static words of index.html, in the customer's language: elements marked data-i18n="key". */
	function translatePage() {
		document.documentElement.lang = lang;
		var marked = document.querySelectorAll('[data-i18n]');
		for (var i = 0; i < marked.length; i++)
			marked[i].textContent = t(marked[i].getAttribute('data-i18n'));
		document.title = t('title');
	}

	/* Sends the voucher form's code (voucherForm sets it up). */
	var redeemVoucher = function() {};

	function voucherForm() {
		// One key per voucher typed: sending the same one again (a lost answer, a second click) is refused as a replay
		// by the router instead of buying twice.
		var voucherKey = null, voucherKeyFor = null;
		$('voucher').addEventListener('submit', function(ev) {
			ev.preventDefault();
			redeemVoucher();
		});
		// A guess-limit refusal names the wait; the code is sent again when it is over, while the router keeps its place.
		var resend = null;
		function redeemVoucher() {
			if (resend !== null) {
				clearTimeout(resend);
				resend = null;
			}
			var code = $('voucher-code').value.trim(), password = $('voucher-password').value;
			if (voucherKeyFor !== code + '\n' + password) {
				voucherKeyFor = code + '\n' + password;
				voucherKey = 'v-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 12);
			}
			var body = { code: code, idempotency_key: voucherKey };
			if (password)
				body.password = password;
			say(t('checkingVoucher'));
			getJson('/voucher', {
				method: 'POST', headers: { 'Content-Type': 'application/json' },
				body: JSON.stringify(body)
			}).then(function(r) {
				if (r.status === 501)
					throw new Refusal(t('vouchersOff'));
				// A printed voucher sells once, ever: typed again (here or on another device) it is refused.
				if (errorCode(r.body) === 'ERR_PAYMENT_REPLAYED')
					throw new Refusal(t('voucherUsed'));
				if (errorCode(r.body) === 'ERR_VOUCHER_GUESS_LIMIT')
					resend = setTimeout(redeemVoucher, retryAfterOf(r) * 1000);
				if (r.status !== 200)
					throw new Refusal(errorText(r.status, r.body, null, r));
				return done(r);
			}).catch(function(e) {
				say(failureText(e), 'error');
			});
		}
		return redeemVoucher;
	}

	/*
	 * A printed ticket's QR code opens /portal?voucher=CODE: the code is filled in and redeemed at once. The query is
	 * dropped from the address first, so a reload does not send the used code again.
	 */
	function voucherFromLink() {
		var code = null;
		try { code = new URLSearchParams(root.location.search).get('voucher'); } catch (e) { code = null; }
		if (!code)
			return;
		try { root.history.replaceState(null, '', root.location.pathname); } catch (e) { /* an old browser: the code stays in the address */ }
		$('voucher-code').value = code.slice(0, 253);
		redeemVoucher();
	}

	/* This browser's device token for free trials (payments/trial.ts): kept, so a rotated MAC gets no second trial. */
	function deviceToken() {
		var key = 'sluice-device', token = null;
		try { token = root.localStorage && root.localStorage.getItem(key); } catch (e) { token = null; }
		if (!token || !/^[A-Za-z0-9_-]{16,64}$/.test(token)) {
			var bytes = new Uint8Array(16);
			root.crypto.getRandomValues(bytes);
			token = Array.prototype.map.call(bytes, function(b) { return ('0' + b.toString(16)).slice(-2); }).join('');
			try { if (root.localStorage) root.localStorage.setItem(key, token); } catch (e) { /* private mode: the MAC still counts */ }
		}
		return token;
	}

	/* A free-trial plan (trial_every): its allowance, how often, and one button. */
	function trialCard(plan) {
		var v = planView(plan);
		var amount = amountText(plan.metric, (BigInt(plan.step_size) * BigInt(v.minSteps)).toString());
		var card = document.createElement('div');
		card.className = 'card plan';
		card.setAttribute('data-plan', v.id);
		var title = document.createElement('div');
		title.className = 'plan-title';
		title.textContent = v.title;
		var line = document.createElement('div');
		line.className = 'plan-price';
		line.textContent = t('trialOffer', { amount: amount, every: amountText('seconds', plan.trial_every) });
		var button = document.createElement('button');
		button.textContent = t('tryFree');
		button.addEventListener('click', function() {
			button.disabled = true;
			getJson('/trial', {
				method: 'POST', headers: { 'Content-Type': 'application/json' },
				body: JSON.stringify({ plan: v.id, device: deviceToken() })
			}).then(function(r) {
				var refused = r.status === 403 ? errorCode(r.body) : null;
				if (refused === 'ERR_TRIAL_USED' || refused === 'ERR_TRIAL_LIMIT') {
					var next = r.body && r.body.error && r.body.error.next_at;
					throw new Refusal(t(refused === 'ERR_TRIAL_USED' ? 'trialUsed' : 'trialsTaken',
						{ time: next ? new Date(Number(next) * 1000).toLocaleString(lang) : '' }));
				}
				if (r.status !== 200)
					throw new Refusal(errorText(r.status, r.body, plan));
				say(t('trialStarted', { amount: amount }), 'ok');
				known = r.body.session;
				knownAt = Date.now();
				renderSession();
			}).catch(function(e) {
				say(failureText(e), 'error');
			}).then(function() { button.disabled = false; });
		});
		card.appendChild(title);
		card.appendChild(line);
		card.appendChild(button);
		return card;
	}

	function loadPlans() {
		return getJson('/').then(function(r) {
			if (r.status !== 200 || !r.body || !Array.isArray(r.body.plans))
				throw new Refusal(errorText(r.status, r.body));
			var methods = r.body.methods || { x402: true, voucher: true };
			var wallet = !!root.ethereum;
			$('voucher-section').hidden = !methods.voucher;
			var cryptoPay = methods.x402 || !!methods.batch_settlement;
			$('wallet-section').hidden = !cryptoPay;
			$('wallet-hint').hidden = wallet || !cryptoPay;
			$('wallet-hint-voucher').hidden = !methods.voucher;
			var box = $('plans');
			var trials = r.body.plans.filter(function(p) { return !!p.trial_every; });
			r.body.plans.filter(function(p) { return !p.trial_every; }).forEach(function(p) { box.appendChild(planCard(p, wallet && cryptoPay)); });
			trials.forEach(function(p) { $('trials').appendChild(trialCard(p)); });
			$('trial-section').hidden = trials.length === 0;
			if (!cryptoPay)
				say(methods.voucher ? t('enterVoucher') : root.SluiceCashuPage && root.SluiceCashuPage.offered ? t('cChoose') : t('nothing'), 'info');
			else
				say(r.body.plans.length ? t('choose') : t('nothing'), 'info');
			if (methods.voucher)
				voucherFromLink();
		}).catch(function(e) {
			say(failureText(e), 'error');
		});
	}

	function start() {
		// The deposit way to pay (batch-page.js, loaded before this file): its words join MESSAGES before the page is translated.
		var batchReady = root.SluiceBatchPage ? root.SluiceBatchPage.attach({
			MESSAGES: MESSAGES, t: t, price: price, planView: planView, chainIdOf: chainIdOf, encodeHeader: encodeHeader, errorCode: errorCode,
			errorText: errorText, conflictOf: conflictOf, say: say, getJson: getJson, done: done, failureText: failureText, Refusal: Refusal,
			balanceOf: balanceOf, known: function() { return known; }
		}) : null;
		// Cashu (cashu-page.js, loaded before this file): its words join MESSAGES too; its section shows when the router takes Cashu.
		var cashuReady = root.SluiceCashuPage ? root.SluiceCashuPage.attach({
			MESSAGES: MESSAGES, t: t, amountText: amountText, errorCode: errorCode, errorText: errorText, say: say, getJson: getJson,
			done: done, failureText: failureText, Refusal: Refusal
		}) : null;
		translatePage();
		$('page-url').textContent = root.location.href;
		redeemVoucher = voucherForm();
		root.setInterval(tick, 1000);
		root.setInterval(showSession, SESSION_REFRESH_MS);
		return Promise.all([ loadPlans(), showSession(), batchReady, cashuReady ]);
	}

	api.started = new Promise(function(resolve) {
		if (document.readyState === 'loading')
			document.addEventListener('DOMContentLoaded', function() { resolve(start()); });
		else
			resolve(start());
	});
	api.tick = tick;
	/* restore.js: the session moved here, show it now rather than at the next refresh. */
	api.showSession = showSession;
})(typeof window !== 'undefined' ? window : globalThis);
