/**
 * GET /buy's x402 exchange and GET /'s plans: each running scheme's offer for a quote side by side, the 402 with
 * PAYMENT-REQUIRED before a payment, the purchase with the scheme the PAYMENT-SIGNATURE names (200 +
 * PAYMENT-RESPONSE), and a refused payment's 402 saying again what is required along with why.
 */
import { httpStatusOf, isSluiceError, SluiceError, toSluiceError } from '../errors.ts';
import { sessionView, type PurchaseOutcome, type SluiceBackend } from '../api/index.ts';
import { X402_SCHEMES, type X402Face, type X402Scheme } from '../payments/index.ts';
import { isLive, type Session } from '../sessions/index.ts';
import { encodeHeader } from '../x402/index.ts';
import { formFlags } from './pay-forms.ts';
import { firstUnavailable, methodUnavailable, portalClientMac, send, type RouteCall } from './reply.ts';
import type { HttpEndpointOptions } from './options.ts';
import { schemeOfHeader } from './x402-schemes.ts';

/** What the sale reads of the endpoint's options. */
type SaleOptions = Pick<
  HttpEndpointOptions,
  'backend' | 'schemes' | 'knownSchemes' | 'forms' | 'unavailable' | 'macOf' | 'log'
>;

type Quote = ReturnType<SluiceBackend['quote']>;
/** What takes a payload: a running face, or the registered scheme that takes unnamed ones (its parser says why). */
type SchemeTaker = X402Face | X402Scheme;

/** Every x402 scheme the plugin list registered, running or not, in its order. */
function knownOf(options: SaleOptions): readonly X402Scheme[] {
  return options.knownSchemes ?? X402_SCHEMES;
}

/** The running face of a scheme, or null. */
function faceOf(options: SaleOptions, scheme: string): X402Face | null {
  return (options.schemes ?? []).find((f) => f.scheme === scheme) ?? null;
}

/** GET /: the plans, each with every running scheme's offer, and the ways to pay this router takes. */
export function plans(options: SaleOptions): unknown {
  const { backend } = options;
  const known = knownOf(options);
  const flags = Object.fromEntries(known.map((s) => [s.planKey, faceOf(options, s.scheme)?.offered() ?? false]));
  return {
    // Which ways to pay this router takes: the page shows a form or wallet buttons only for what exists.
    methods: {
      ...flags,
      ...formFlags(options.forms),
      // Configured but down (a damaged state file): the page can say so instead of offering nothing.
      unavailable: [...(options.unavailable ?? [])],
    },
    plans: backend.pricing().map((p) => {
      // Each running scheme's offer for the plan (null: one it cannot sell); an `alwaysListed` one's when off too.
      const offerOf = (face: X402Face | null): unknown => {
        try {
          return face?.offer(backend.quote({ plan: p.id })) ?? null;
        } catch {
          return null;
        }
      };
      const offers = Object.fromEntries(
        known.flatMap((s) => {
          const face = faceOf(options, s.scheme);
          return face || s.alwaysListed ? [[s.planKey, offerOf(face)]] : [];
        }),
      );
      return {
        id: p.id,
        metric: p.metric,
        step_size: p.stepSize,
        price_per_step: p.pricePerStep,
        currency: p.currency,
        decimals: p.decimals,
        min_steps: p.minSteps,
        max_steps: p.maxSteps,
        ...(p.timeLimit !== undefined && { time_limit: p.timeLimit }),
        ...(p.trialEvery !== undefined && { trial_every: p.trialEvery }),
        ...(p.displayName !== undefined && { display_name: p.displayName }),
        ...(p.devices !== undefined && { devices: p.devices }),
        ...offers,
      };
    }),
  };
}

/** The running x402 faces; none running: why (a method down, or x402 off). */
function runningFaces(options: SaleOptions): readonly X402Face[] {
  const faces = options.schemes ?? [];
  if (faces.length > 0) return faces;
  const down = firstUnavailable(
    options.unavailable,
    knownOf(options).map((s) => s.method),
  );
  if (down) throw methodUnavailable(down);
  throw new SluiceError('ERR_UNKNOWN_PAYMENT_METHOD', 'x402 is not enabled on this router');
}

/** Each scheme this router takes for the quote; a plan one scheme cannot sell is offered by the other alone. */
function offersFor(faces: readonly X402Face[], quote: Quote): Array<Record<string, unknown>> {
  const offers: Array<Record<string, unknown>> = [];
  let refusal: unknown;
  for (const face of faces) {
    try {
      const offer = face.offer(quote);
      if (offer) offers.push(offer);
    } catch (err) {
      refusal = err;
    }
  }
  // None offers it and none refused it (a scheme may sell only some plans): say so, not a 500 of `undefined`.
  if (offers.length === 0)
    throw (
      refusal ??
      new SluiceError('ERR_UNKNOWN_PAYMENT_METHOD', `no x402 scheme on this router sells plan ${quote.plan}`, {
        details: { plan: quote.plan },
      })
    );
  return offers;
}

/**
 * The face that takes a payload: the scheme it names when that method runs (one whose method is down is told so, not
 * handed to another scheme's parser); else the first running one that takes what names none; else the first
 * registered one that does (X402Scheme.takesUnnamed).
 */
function takerOf(options: SaleOptions, faces: readonly X402Face[], signature: unknown): SchemeTaker {
  // The payload names its scheme (accepted.scheme); one that names none goes to a scheme that takes those, whose
  // parser says why.
  const scheme = typeof signature === 'string' ? schemeOfHeader(signature) : null;
  const known = knownOf(options);
  const named = known.find((s) => s.scheme === scheme);
  const downForScheme = named ? firstUnavailable(options.unavailable, [named.method]) : null;
  if (downForScheme) throw methodUnavailable(downForScheme);
  return (
    (named && faceOf(options, named.scheme)) ??
    (typeof signature === 'string' ? faces.find((f) => f.takesUnnamed) : undefined) ??
    // The scheme whose method takes a payload that names no running scheme, when none runs that would.
    known.find((s) => s.takesUnnamed) ??
    faces[0]!
  );
}

/** GET /buy: the 402 that says what is required, or with PAYMENT-SIGNATURE the purchase. */
export async function buy(options: SaleOptions, { req, res, ip }: RouteCall, url: URL): Promise<void> {
  const { backend } = options;
  const faces = runningFaces(options);
  const plan = url.searchParams.get('plan') ?? undefined;
  const stepsText = url.searchParams.get('steps');
  if (stepsText !== null && !/^[0-9]{1,9}$/.test(stepsText))
    throw new SluiceError('ERR_INVALID_AMOUNT', 'steps must be a whole number');
  const steps = stepsText === null ? undefined : BigInt(stepsText);
  const quote = backend.quote({ ...(plan !== undefined && { plan }), ...(steps !== undefined && { steps }) });
  const offers = offersFor(faces, quote);
  const required = (error?: string, corrective?: { scheme: string; extra: Record<string, unknown> }) => ({
    x402Version: 2,
    ...(error !== undefined && { error }),
    resource: {
      url: `http://${req.headers.host ?? 'sluice'}${url.pathname}${url.search}`,
      description: `WiFi: ${quote.allotment} ${quote.metric} (plan ${quote.plan})`,
      mimeType: 'application/json',
    },
    accepts: offers.map((o) =>
      corrective && o.scheme === corrective.scheme
        ? { ...o, extra: { ...(o.extra as Record<string, unknown>), ...corrective.extra } }
        : o,
    ),
  });
  const signature = req.headers['payment-signature'];
  const taker = takerOf(options, faces, signature);
  const method = taker.method;
  let mac: string | null = null;
  try {
    const startedAt = performance.now();
    mac = await portalClientMac(options.macOf, ip);
    const lookupMs = Math.round(performance.now() - startedAt);
    if (typeof signature !== 'string' || signature === '') {
      // Before the wallet signs: refuse what would be refused after (a device the portal does not list, a plan that
      // cannot top up the live session), so nobody signs for nothing.
      const live = backend.session({ mac });
      await backend.venue?.checkSale(mac);
      if (live && isLive(live) && live.metric !== quote.metric) {
        throw new SluiceError(
          'ERR_SESSION_METRIC_MISMATCH',
          `${mac} has an active ${live.metric} session; plan ${quote.plan} sells ${quote.metric}`,
          { details: { metric: live.metric, requested: quote.metric } },
        );
      }
      const body = required();
      return send(res, 402, body, { 'payment-required': encodeHeader(body) });
    }
    const before = backend.session({ mac });
    const outcome = await backend.purchase({
      mac,
      ip,
      plan: quote.plan,
      ...(steps !== undefined && { steps }),
      payment: { method, payload: signature },
    });
    const paid = outcome.session.payments.at(-1);
    const settlement = !paid ? null : (faces.find((f) => f.method === method)?.settlementOf(paid.reference) ?? null);
    const headers: Record<string, string> = settlement ? { 'payment-response': encodeHeader(settlement) } : {};
    // Where a slow answer went: the IP → MAC lookup, then the purchase (payment checks, journal, the gate's open:
    // its own line gives the open's share).
    options.log?.info('http purchase', {
      mac,
      ip,
      plan: quote.plan,
      method,
      lookup_ms: lookupMs,
      took_ms: Math.round(performance.now() - startedAt),
    });
    return send(res, 200, purchased(backend, outcome, before), headers);
  } catch (err) {
    const e = toSluiceError(err);
    // The customer's page shows its own words for the code; the admin traces a complaint with this line.
    options.log?.info(
      typeof signature === 'string' ? 'http purchase refused' : 'http purchase refused before payment',
      { mac, ip, plan: quote.plan, code: e.code, reason: e.message },
    );
    if (!isSluiceError(err) || httpStatusOf(err.code) !== 402) throw err;
    // A refused payment: the client may pay again, so say what is required along with why. A scheme's refusal may
    // carry the spec's reason as `error` (X402Scheme.reasonAsError: a client acts on it) and the spec's corrective
    // fields (X402Scheme.corrective), from which the client re-syncs and signs again.
    const reason = taker.reasonAsError && typeof err.details?.reason === 'string' ? err.details.reason : undefined;
    const fields = taker.corrective?.(err.details as Record<string, unknown> | undefined);
    const extra = fields && { scheme: taker.scheme, extra: fields };
    const body = {
      ...required(reason ?? `${err.code}: ${err.message}`, extra),
      code: err.code,
      message: err.message,
    };
    return send(res, 402, body, { 'payment-required': encodeHeader(required(reason ?? err.code, extra)) });
  }
}

/**
 * A purchase's answer: the session, whether it topped up a live one, and what this purchase added (the quote's
 * allotment; for a method whose quote a server decides, the session's growth), so the page says both.
 */
export function purchased(backend: SluiceBackend, outcome: PurchaseOutcome, before: Session | undefined): unknown {
  const s = outcome.session;
  const added =
    outcome.quote?.allotment ??
    (outcome.toppedUp && before?.id === s.id ? s.allotment - before.allotment : s.allotment);
  return {
    session: sessionView(s, backend.now()),
    topped_up: outcome.toppedUp,
    added: added.toString(),
    gate: outcome.gate,
  };
}
