/**
 * `voucher`: a code (and optional password) checked by the RADIUS server with a PAP Access-Request. The Access-Accept
 * decides the session, not the pricing plan: Session-Timeout → a time session of that many seconds; a byte limit
 * (ChilliSpot-Max-Total-Octets/-Gigawords or Mikrotik-Total-Limit/-Gigawords; the smaller if both) → a data session;
 * both → a data session that also ends at the Session-Timeout deadline. The voucher's User-Name becomes the session's
 * user, so limits.max_devices_per_user applies per voucher. Nothing is granted unless a verified Access-Accept arrived.
 * Wrong codes are limited before the server is asked (guesses.ts): the printed-voucher method in front shares the
 * limiter, and without it (its book damaged) this method applies it alone.
 */
import { randomBytes } from 'node:crypto';
import { SluiceError } from '../../errors.ts';
import { normalizeMac } from '../../mac.ts';
import type { Metric } from '../../config/index.ts';
import {
  AttributeReader,
  CODE,
  encodeRequest,
  nasAttributes,
  RadiusPacketError,
  rfc3580Mac,
  type AttributeInput,
  type NasIdentity,
  type RadiusClient,
  type RadiusPacket,
} from '../../radius/index.ts';
import type { PaymentContext, PaymentMethod, PaymentRef } from '../types.ts';
import type { ClientRates } from '../../portal/index.ts';
import { silentLogger, type Log } from '../../log.ts';
import { ratesFromAccept } from './voucher-rates.ts';
import { clientKeys, GuessLimiter } from './guesses.ts';

/** What the Access-Accept granted. */
export interface VoucherTerms {
  metric: Metric;
  /** Seconds or bytes. */
  allotment: bigint;
  /** A hard deadline (ms since the epoch) for a data voucher that also carried Session-Timeout; null otherwise. */
  expiresAt: number | null;
  user: string;
  /** Acct-Interim-Interval from the Accept (seconds, at least 60), if any. */
  interimIntervalS: number | null;
  /** Class attributes to echo in accounting (RFC 2865 §5.25). */
  classes: Buffer[];
  replyMessage: string | null;
  /** The speed tier the Accept set (WISPr-Bandwidth-Max-*, Mikrotik-Rate-Limit); null: none usable. The merchant
   *  grants it with the session, which journals it (a restart re-limits the session's gate with it). */
  rates: ClientRates | null;
}

const MIN_INTERIM_S = 60;

/** Pure: an Access-Accept's attributes → terms (ERR_VOUCHER_INVALID when it grants nothing sluice can enforce). */
export function termsFromAccept(
  reply: AttributeReader,
  user: string,
  now: number,
  log: Log = silentLogger,
): VoucherTerms {
  let timeout: number | undefined;
  let chilli: bigint | undefined;
  let mikrotik: bigint | undefined;
  let interim: number | undefined;
  try {
    timeout = reply.integer('Session-Timeout');
    chilli = reply.octets('ChilliSpot-Max-Total-Octets', 'ChilliSpot-Max-Total-Gigawords');
    mikrotik = reply.octets('Mikrotik-Total-Limit', 'Mikrotik-Total-Limit-Gigawords');
    interim = reply.integer('Acct-Interim-Interval');
  } catch (err) {
    throw new SluiceError('ERR_VOUCHER_INVALID', `Access-Accept has a malformed limit: ${(err as Error).message}`);
  }
  const limits = [chilli, mikrotik].filter((v): v is bigint => v !== undefined && v > 0n);
  const bytes = limits.length === 0 ? undefined : limits.reduce((a, b) => (a < b ? a : b));
  const seconds = timeout !== undefined && timeout > 0 ? BigInt(timeout) : undefined;
  const rates = ratesFromAccept(reply);
  for (const problem of rates.problems) log.warn('voucher rate ignored', { user, reason: problem });
  const base = {
    user: reply.string('User-Name') || user,
    interimIntervalS: interim === undefined || interim === 0 ? null : Math.max(MIN_INTERIM_S, interim),
    classes: reply.all('Class'),
    replyMessage: reply.string('Reply-Message') ?? null,
    rates: rates.rates,
  };
  if (bytes !== undefined) {
    return {
      ...base,
      metric: 'bytes',
      allotment: bytes,
      expiresAt: seconds === undefined ? null : now + Number(seconds) * 1000,
    };
  }
  if (seconds !== undefined) return { ...base, metric: 'seconds', allotment: seconds, expiresAt: null };
  throw new SluiceError(
    'ERR_VOUCHER_INVALID',
    'Access-Accept carries neither Session-Timeout nor a byte limit: nothing to enforce',
  );
}

export interface VoucherMethodOptions {
  client: Pick<RadiusClient, 'request'>;
  nas: () => NasIdentity;
  /** Told about every accepted voucher (the accounting sink keeps Acct-Interim-Interval and Class per payment). */
  onAccepted?: (reference: string, terms: VoucherTerms) => void;
  /** Where an unusable rate attribute is reported (the voucher is granted without it). */
  log?: Log;
}

/** A PaymentRef that also says what the voucher grants (the merchant uses it instead of the plan). */
export interface VoucherPayment extends PaymentRef {
  terms: VoucherTerms;
}

function field(payment: Record<string, unknown>, name: string, required: boolean): string | undefined {
  const v = payment[name];
  if (!required && (v === undefined || v === null || v === '')) return undefined;
  if (typeof v !== 'string' || v === '' || Buffer.byteLength(v) > (name === 'code' ? 253 : 128) || v.includes('\0')) {
    throw new SluiceError(
      'ERR_INVALID_ARGUMENT',
      `payment.${name} must be a non-empty string (${name === 'code' ? 253 : 128} bytes at most)`,
    );
  }
  return v;
}

export class VoucherMethod implements PaymentMethod {
  readonly name = 'voucher';
  readonly adminOnly = false;
  readonly setsTerms = true;
  private readonly counters = { accepted: 0, rejected: 0, unavailable: 0 };
  /** The wrong-code limit of every voucher door: the printed-voucher method in front uses this one too. */
  readonly guesses = new GuessLimiter();

  constructor(private readonly options: VoucherMethodOptions) {}

  /** The merchant's precheck: the fields, then a guess (ERR_VOUCHER_GUESS_LIMIT) before the server is asked. */
  precheck(ctx: Pick<PaymentContext, 'request' | 'now'>): void {
    this.checkFields(ctx);
    this.guesses.check(clientKeys(ctx.request), ctx.now);
  }

  /** The checks that need no network (a method in front that took the guess itself runs only these). */
  checkFields(ctx: Pick<PaymentContext, 'request'>): void {
    const payment = ctx.request.payment as Record<string, unknown>;
    field(payment, 'code', true);
    field(payment, 'password', false);
  }

  /** Asks the server, its guess checked by precheck: a rejected code is a wrong guess, an accepted one none. */
  async authorize(ctx: PaymentContext): Promise<VoucherPayment> {
    try {
      const paid = await this.ask(ctx);
      this.guesses.notAGuess(ctx.now);
      return paid;
    } catch (err) {
      if (err instanceof SluiceError && err.code === 'ERR_VOUCHER_REJECTED')
        this.guesses.charge(clientKeys(ctx.request), ctx.now);
      throw err;
    }
  }

  /** The Access-Request and its answer, no guess counted (the caller took and settles it). */
  async ask(ctx: PaymentContext): Promise<VoucherPayment> {
    const payment = ctx.request.payment as Record<string, unknown>;
    const code = field(payment, 'code', true)!;
    const password = field(payment, 'password', false) ?? code;
    const attributes: AttributeInput[] = [
      ['User-Name', code],
      ['Service-Type', 'Login'],
      ...nasAttributes(this.options.nas()),
      ['Calling-Station-Id', rfc3580Mac(normalizeMac(ctx.request.mac))],
    ];
    if (typeof ctx.request.ip === 'string' && /^\d+\.\d+\.\d+\.\d+$/.test(ctx.request.ip))
      attributes.push(['Framed-IP-Address', ctx.request.ip]);
    let reply: RadiusPacket;
    try {
      reply = await this.options.client.request(({ identifier, server }) =>
        encodeRequest({
          code: 'Access-Request',
          identifier,
          attributes,
          secret: server.secret,
          password,
          messageAuthenticator: true,
        }),
      );
    } catch (err) {
      this.counters.unavailable++;
      if (err instanceof RadiusPacketError) throw new SluiceError('ERR_INVALID_ARGUMENT', `voucher: ${err.message}`);
      throw err instanceof SluiceError ? err : new SluiceError('ERR_UPSTREAM_UNAVAILABLE', String(err));
    }
    const attrs = new AttributeReader(reply.attributes);
    if (reply.code !== CODE['Access-Accept']) {
      this.counters.rejected++;
      const message =
        reply.code === CODE['Access-Reject']
          ? (attrs.string('Reply-Message') ?? 'voucher rejected')
          : 'the RADIUS server asked for more (Access-Challenge is not supported)';
      throw new SluiceError('ERR_VOUCHER_REJECTED', message, {
        details: { reply_message: attrs.string('Reply-Message') ?? null },
      });
    }
    const terms = termsFromAccept(attrs, code, ctx.now, this.options.log);
    this.counters.accepted++;
    const reference = `${terms.user}/${randomBytes(6).toString('hex')}`;
    this.options.onAccepted?.(reference, terms);
    return { method: this.name, reference, amount: 0n, asset: ctx.quote.asset, at: ctx.now, terms };
  }

  stats(): { accepted: number; rejected: number; unavailable: number } {
    return { ...this.counters };
  }
}
