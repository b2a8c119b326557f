/**
 * The LAN endpoint's `cashu` routes (docs/tollgate.md "Pay page"), the pay page's way to pay with
 * ecash (PluginRegistrars.lanRoute):
 *   GET  /cashu/offer?steps=N   what the router sells for Cashu: the tollgate plan, its price in sat per step,
 *                       min/max steps, the accepted mints, and a NUT-18 payment request (`creqA…`, in-band: no
 *                       transport) for N steps (default min_steps) that the page offers as a `cashu:` link; a wallet
 *                       (cashu.me, Minibits, Nutstash) opens it as "pay N sat from one of these mints" and hands the
 *                       customer the token to paste (501 when the tollgate section is off)
 *   POST /cashu/pay     {token}: a pasted cashuA…/cashuB… token buys the tollgate plan for the caller's device, exactly
 *                       as ubus `purchase` {payment: {method: 'cashu', token}} does (the merchant's replay rule, the
 *                       swap before the session: cashu.ts)
 *   POST /cashu/lightning {steps}   Pay with Lightning: the mint's bolt11 invoice for the steps' price, its quote on
 *                       flash for the caller's device (lightning.ts) → {quote, request, amount, expiry, steps}
 *   GET  /cashu/lightning?quote=    the quote resolved now: {state: unpaid | paid | unknown} (paid: the session is
 *                       granted; unknown: expired and dropped, or never this router's); 409 ERR_CASHU_QUOTE_CLAIMED:
                       paid, and minted at the mint by someone else (the payer is told; nothing was granted)
 * A refusal answers {error: {code, message, details?}}: the page words each ERR_CASHU_* for the customer; a pending
 * swap (ERR_CASHU_PENDING) is 202, "being confirmed, do not pay again".
 */
import { SluiceError, toSluiceError } from '../../errors.ts';
import type { LanFace, LanRoute } from '../plugin-faces.ts';
import type { LightningInvoice, LightningState } from './lightning.ts';

/** A token is at most 48 KiB (token.ts); the JSON around it a little more. */
const MAX_PAY_BYTES = 50 * 1024;

/** What GET /cashu/offer answers (amounts as decimal strings: they are bigints). */
export interface CashuOffer {
  plan: string;
  metric: string;
  step_size: string;
  unit: string;
  price_per_step: string;
  min_steps: string;
  /** stepsCap (steps.ts): what a token, this request and an invoice may buy at most. */
  max_steps: string;
  mints: string[];
  /** The steps `payment_request` asks for, and the NUT-18 request itself (creqA…). */
  steps: string;
  payment_request: string;
  /** The page may offer Pay with Lightning (POST /cashu/lightning). */
  lightning: boolean;
}

/** The running cashu method as its LAN routes see it (PaymentPart.lan). */
export interface CashuLanFace {
  /** `steps`: what the payment request asks for (undefined: min_steps); outside min..max: ERR_INVALID_ARGUMENT. */
  offer(steps?: bigint): CashuOffer;
  lightning(mac: string, ip: string, steps: bigint): Promise<LightningInvoice>;
  lightningState(quote: string): Promise<LightningState>;
  /** A quote as the log may name it (lightning.ts loggedRef): never the id, which mints the ecash. */
  loggedQuote(quote: string): string;
}

export const notEnabled = (): SluiceError =>
  new SluiceError('ERR_UNKNOWN_PAYMENT_METHOD', 'this router does not take Cashu (the tollgate section is off)');

/**
 * A Cashu payment's answer to a shared code (each code's own status is errors.ts's): a token or invoice already in
 * flight is a refused payment here (402), where the endpoint's other routes answer it 409 (a purchase in flight).
 */
export function cashuRouteStatus(code: string): number | undefined {
  return code === 'ERR_PAYMENT_IN_PROGRESS' ? 402 : undefined;
}

export const cashuLanRoutes: readonly LanRoute[] = [
  {
    method: 'GET',
    path: '/cashu/offer',
    async handler(req, face: LanFace | null) {
      if (!face?.cashu) throw notEnabled();
      const steps = req.url.searchParams.get('steps');
      if (steps !== null && !/^[1-9][0-9]{0,15}$/.test(steps))
        throw new SluiceError('ERR_INVALID_ARGUMENT', 'steps must be a whole number', {
          details: { argument: 'steps' },
        });
      return { status: 200, body: face.cashu.offer(steps === null ? undefined : BigInt(steps)) };
    },
  },
  {
    method: 'POST',
    path: '/cashu/pay',
    paying: true,
    statusOf: cashuRouteStatus,
    async handler(req, face: LanFace | null) {
      const { token } = await req.json(MAX_PAY_BYTES, 'ERR_INVALID_ARGUMENT', '{token}');
      if (!face?.cashu) throw notEnabled();
      if (typeof token !== 'string' || token.trim() === '')
        throw new SluiceError('ERR_CASHU_TOKEN_INVALID', 'token must be a cashuA… or cashuB… token');
      let mac: string | null = null;
      try {
        mac = await req.mac();
        // Pasted text may carry the wallet's `cashu:` prefix and stray whitespace; the token itself is never logged.
        const text = token
          .trim()
          .replace(/^cashu:(?!\/\/)/i, '')
          .replace(/\s+/g, '');
        const answer = await req.purchase(mac, { method: 'cashu', token: text });
        req.log?.info('http cashu payment', { mac, ip: req.ip });
        return { status: 200, body: answer };
      } catch (err) {
        const e = toSluiceError(err);
        req.log?.info('http cashu payment refused', { mac, ip: req.ip, code: e.code });
        throw err;
      }
    },
  },
  {
    method: 'POST',
    path: '/cashu/lightning',
    paying: true,
    statusOf: cashuRouteStatus,
    async handler(req, face: LanFace | null) {
      const { steps } = await req.json(1024, 'ERR_INVALID_ARGUMENT', '{steps}');
      if (!face?.cashu) throw notEnabled();
      const text = typeof steps === 'number' ? String(steps) : steps;
      if (typeof text !== 'string' || !/^[1-9][0-9]{0,15}$/.test(text))
        throw new SluiceError('ERR_INVALID_ARGUMENT', 'steps must be a whole number', {
          details: { argument: 'steps' },
        });
      const mac = await req.mac();
      const invoice = await face.cashu.lightning(mac, req.ip, BigInt(text));
      // Never the quote id above debug: a quote not locked to the router's key is minted by whoever has it.
      req.log?.info('http cashu lightning quote', {
        mac,
        ip: req.ip,
        reference: face.cashu.loggedQuote(invoice.quote),
        amount: invoice.amount,
      });
      return { status: 200, body: invoice };
    },
  },
  {
    method: 'GET',
    path: '/cashu/lightning',
    async handler(req, face: LanFace | null) {
      if (!face?.cashu) throw notEnabled();
      const quote = req.url.searchParams.get('quote');
      if (quote === null || !/^[A-Za-z0-9_-]{1,128}$/.test(quote))
        throw new SluiceError('ERR_INVALID_ARGUMENT', 'quote must be a quote id', { details: { argument: 'quote' } });
      const state = await face.cashu.lightningState(quote);
      if (state === 'claimed') {
        throw new SluiceError(
          'ERR_CASHU_QUOTE_CLAIMED',
          'this invoice was paid, but its ecash was taken at the mint by someone else before this router could take ' +
            'it: no access was granted. Keep your payment receipt and ask the staff',
          { details: { quote, state } },
        );
      }
      return { status: 200, body: { quote, state } };
    },
  },
];
