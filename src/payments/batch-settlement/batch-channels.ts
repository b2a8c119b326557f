/**
 * The server's per-channel state of x402 `batch-settlement` (the spec's "Per-Channel State" table), one JSON file
 * `<state_dir>/batch-channels.json` replaced atomically (temp file, fsync, rename, directory fsync) on every change,
 * and the write awaited before the caller acts on it: a voucher accepted is on flash before its session is granted,
 * a charge is on flash before anything is claimed for it. Writes are serialized (one after the other, each the whole
 * table), so the file is always one consistent table.
 *
 * A channel's money, in the contract's words: `balance` (deposits − withdrawals − refunds) and `totalClaimed` (what
 * the receiver has claimed so far) are mirrored from the facilitator's answers; `charged` is sluice's own cumulative
 * charge (what the meter counted), never above `signedMax`, the ceiling of the latest voucher the payer signed —
 * also the highest: every voucher accepted raises it (x402-batch-rules.ts `nextCeiling`), which binds each to one
 * purchase.
 *
 * Beside the channels, the purchases under way whose deposit may move money (`PurchaseIntent`): written before the
 * deposit's /settle, dropped in the same write as the purchase's voucher.
 */
import { join } from 'node:path';
import { SluiceError } from '../../errors.ts';
import { JsonTable, type JsonTableFormat } from '../../storage/index.ts';

export const BATCH_CHANNELS_FILE = 'batch-channels.json';

export interface BatchChannelConfig {
  payer: string;
  payerAuthorizer: string;
  receiver: string;
  receiverAuthorizer: string;
  token: string;
  withdrawDelay: number;
  salt: string;
}

/** The session a channel is paying for now: at most one (the spec serializes per channel). */
export interface OpenCharge {
  /** The payment reference the session holds (`channelId:ceiling` of the voucher that opened it). */
  reference: string;
  /** `charged` when it opened. */
  base: bigint;
  /**
   * The most `charged` may reach at the session's end: base + the prices of its purchase and top-ups (at most
   * signedMax, which may stand higher: the floor of a new purchase's ceiling is no purchase). Absent in older
   * charges: signedMax (their ceiling was exactly that).
   */
  limit?: bigint;
  pricePerStep: bigint;
  stepSize: bigint;
  mac: string;
  at: number;
}

/**
 * The unused balance going back to the customer: asked for (by the policy's schedule or the customer's request, on
 * flash so a restart keeps it), then done with the refund's transaction ("" when the money had already gone).
 */
export type RefundState =
  | { state: 'requested'; requestedAt: number; amount?: bigint }
  | { state: 'done'; amount: bigint; transaction: string; at: number };

export interface ChannelRecord {
  channelId: string;
  network: string;
  chainId: number;
  config: BatchChannelConfig;
  charged: bigint;
  signedMax: bigint;
  signature: string;
  balance: bigint;
  totalClaimed: bigint;
  withdrawRequestedAt: number;
  refundNonce: bigint;
  /** ms: when the mirrored fields were last refreshed from the facilitator. */
  syncedAt: number;
  lastRequestAt: number;
  open?: OpenCharge;
  /** ms: when the last session ended; the unused balance is refunded from then on (the refund policy). */
  idleSince?: number;
  /**
   * Vouchers accepted on this channel so far: a purchase checks it did not change between its precheck and its
   * authorize (another purchase or a refund went through meanwhile).
   */
  purchases: number;
  refund?: RefundState;
}

/**
 * A deposit purchase under way: on flash before its /settle moves the customer's money into their channel,
 * dropped in the same write that records the purchase's voucher. The channel record is written only at the grant, so
 * without it a kill -9 between the money landing and the grant left nothing saying whose purchase that was: the same
 * payload resent after the restart (by anyone who read the header on the open WiFi) got the session. While an intent
 * stands, only its device buys on the channel.
 */
export interface PurchaseIntent {
  channelId: string;
  /** The voucher's ceiling (maxClaimableAmount) and signature. */
  ceiling: bigint;
  signature: string;
  /** The device that sent it: the only one the purchase can be granted to. */
  mac: string;
  /** sha256 (hex) of the payload as received: which payload this is. */
  payload: string;
  /**
   * The same voucher without its deposit (the x402 envelope: accepted, channelConfig, voucher): what a restart asks
   * the facilitator about (/verify holds exactly when the money is in the channel). It moves no money by itself.
   */
  voucherPayload: Record<string, unknown>;
  /** The plan's asset and price: the requirements /verify is asked with. */
  asset: string;
  price: bigint;
  /** unix s: the deposit's authorization can land until then (its validBefore or deadline); 0: not known. */
  deadline: number;
  /** ms: when it was written. */
  at: number;
  /** ms: when the money was found in the channel (a restart asked); the device's resend then gets its session. */
  landedAt?: number;
}

const BIG_FIELDS = ['charged', 'signedMax', 'balance', 'totalClaimed', 'refundNonce'] as const;

function toJson(r: ChannelRecord): Record<string, unknown> {
  const out: Record<string, unknown> = { ...r };
  for (const k of BIG_FIELDS) out[k] = r[k].toString();
  if (r.open)
    out.open = {
      ...r.open,
      base: r.open.base.toString(),
      ...(r.open.limit !== undefined && { limit: r.open.limit.toString() }),
      pricePerStep: r.open.pricePerStep.toString(),
      stepSize: r.open.stepSize.toString(),
    };
  if (r.refund)
    out.refund = { ...r.refund, ...(r.refund.amount !== undefined && { amount: r.refund.amount.toString() }) };
  return out;
}

function fromJson(v: unknown): ChannelRecord {
  if (typeof v !== 'object' || v === null) throw new TypeError('a channel that is not an object');
  const r = v as Record<string, unknown>;
  if (
    typeof r.channelId !== 'string' ||
    typeof r.network !== 'string' ||
    typeof r.chainId !== 'number' ||
    typeof r.signature !== 'string' ||
    typeof r.config !== 'object' ||
    r.config === null
  ) {
    throw new TypeError('a channel without channelId, network, chainId, config or signature');
  }
  const big = (x: unknown): bigint => {
    if (typeof x !== 'string' || !/^[0-9]+$/.test(x)) throw new TypeError('not an amount');
    return BigInt(x);
  };
  const rec: ChannelRecord = {
    channelId: r.channelId,
    network: r.network,
    chainId: r.chainId,
    config: r.config as BatchChannelConfig,
    signature: r.signature,
    charged: big(r.charged),
    signedMax: big(r.signedMax),
    balance: big(r.balance),
    totalClaimed: big(r.totalClaimed),
    refundNonce: big(r.refundNonce),
    withdrawRequestedAt: Number(r.withdrawRequestedAt ?? 0),
    syncedAt: Number(r.syncedAt ?? 0),
    lastRequestAt: Number(r.lastRequestAt ?? 0),
    ...(typeof r.idleSince === 'number' && { idleSince: r.idleSince }),
    purchases: Number(r.purchases ?? 0),
  };
  if (typeof r.refund === 'object' && r.refund !== null) {
    const f = r.refund as Record<string, unknown>;
    if (f.state === 'requested')
      rec.refund = {
        state: 'requested',
        requestedAt: Number(f.requestedAt),
        ...(f.amount !== undefined && { amount: big(f.amount) }),
      };
    else if (f.state === 'done')
      rec.refund = { state: 'done', amount: big(f.amount), transaction: String(f.transaction ?? ''), at: Number(f.at) };
    else throw new TypeError(`channel ${rec.channelId}: refund state ${JSON.stringify(f.state)}`);
  }
  if (typeof r.open === 'object' && r.open !== null) {
    const o = r.open as Record<string, unknown>;
    rec.open = {
      reference: String(o.reference),
      base: big(o.base),
      ...(o.limit !== undefined && { limit: big(o.limit) }),
      pricePerStep: big(o.pricePerStep),
      stepSize: big(o.stepSize),
      mac: String(o.mac),
      at: Number(o.at),
    };
  }
  if (rec.charged > rec.signedMax) throw new TypeError(`channel ${rec.channelId} charged above its signed ceiling`);
  return rec;
}

function intentToJson(i: PurchaseIntent): Record<string, unknown> {
  return { ...i, ceiling: i.ceiling.toString(), price: i.price.toString() };
}

function intentFromJson(v: unknown): PurchaseIntent {
  if (typeof v !== 'object' || v === null) throw new TypeError('an intent that is not an object');
  const i = v as Record<string, unknown>;
  if (
    typeof i.channelId !== 'string' ||
    typeof i.mac !== 'string' ||
    typeof i.signature !== 'string' ||
    typeof i.payload !== 'string' ||
    typeof i.asset !== 'string' ||
    typeof i.voucherPayload !== 'object' ||
    i.voucherPayload === null ||
    typeof i.ceiling !== 'string' ||
    !/^[0-9]+$/.test(i.ceiling) ||
    typeof i.price !== 'string' ||
    !/^[0-9]+$/.test(i.price)
  ) {
    throw new TypeError('an intent without channelId, mac, signature, payload, asset, voucher, ceiling or price');
  }
  return {
    channelId: i.channelId,
    ceiling: BigInt(i.ceiling),
    signature: i.signature,
    mac: i.mac,
    payload: i.payload,
    voucherPayload: i.voucherPayload as Record<string, unknown>,
    asset: i.asset,
    price: BigInt(i.price),
    deadline: Number(i.deadline ?? 0),
    at: Number(i.at ?? 0),
    ...(typeof i.landedAt === 'number' && { landedAt: i.landedAt }),
  };
}

/** Purchase intents by channel id (lower case): at most one per channel (the spec serializes purchases per channel). */
type Intents = Map<string, PurchaseIntent>;

/**
 * `{"version": 1, "channels": [...], "intents": [...]}` (intents absent when none, and in tables written before
 * intents were kept); amounts as decimal strings. Anything else is refused, never overwritten (storage/json-table.ts).
 */
const FORMAT: JsonTableFormat<ChannelRecord, Intents> = {
  code: 'ERR_BATCH_STORE',
  writeCode: 'ERR_BATCH_STORE',
  what: 'a batch-settlement channel table',
  key: (r) => r.channelId,
  split(json) {
    const file = json as { version?: unknown; channels?: unknown; intents?: unknown } | null;
    if (typeof file !== 'object' || file === null || file.version !== 1 || !Array.isArray(file.channels))
      throw new TypeError('not the channel table');
    const intents = file.intents ?? [];
    if (!Array.isArray(intents)) throw new TypeError('intents is not a list');
    const extra: Intents = new Map();
    for (const i of intents) {
      const intent = intentFromJson(i);
      extra.set(intent.channelId.toLowerCase(), intent);
    }
    return { rows: file.channels, extra };
  },
  row: (c) => fromJson(c),
  join: (channels, intents) => ({
    version: 1,
    channels: channels.map(toJson),
    ...(intents.size > 0 && { intents: [...intents.values()].map(intentToJson) }),
  }),
  empty: () => new Map(),
};

export class BatchChannelStore {
  private constructor(private readonly channels: JsonTable<ChannelRecord, Intents>) {}

  private get pending(): Intents {
    return this.channels.extra;
  }

  /** Reads the table (none yet: empty). A file that is not the table is refused, never overwritten. */
  /** `atStart`: opened at the daemon's start (storage/json-table.ts JsonTableOpen). */
  static async open(dir: string, { atStart = false }: { atStart?: boolean } = {}): Promise<BatchChannelStore> {
    return new BatchChannelStore(await JsonTable.open(join(dir, BATCH_CHANNELS_FILE), FORMAT, { atStart }));
  }

  get(channelId: string): ChannelRecord | undefined {
    const r = this.channels.get(channelId.toLowerCase());
    return r && structuredClone(r);
  }

  list(): ChannelRecord[] {
    return this.channels.list().map((r) => structuredClone(r));
  }

  /**
   * Replaces one channel's record and resolves once the table is on flash (a failed write leaves memory as it was).
   * `resolvesIntent`: the purchase this record's voucher pays for was the channel's intent, dropped in the same write
   * (only a purchase does that: a charge, a claim or a refund written meanwhile leaves the intent standing).
   */
  async put(record: ChannelRecord, options: { resolvesIntent?: boolean } = {}): Promise<void> {
    if (record.charged > record.signedMax)
      throw storeError(`refusing to store channel ${record.channelId} charged above its ceiling`);
    const id = record.channelId.toLowerCase();
    const before = this.channels.get(id);
    const intent = options.resolvesIntent ? this.pending.get(id) : undefined;
    this.channels.set(structuredClone({ ...record, channelId: id }));
    if (intent) this.pending.delete(id);
    try {
      await this.flush();
    } catch (err) {
      if (before) this.channels.set(before);
      else this.channels.drop(id);
      if (intent) this.pending.set(id, intent);
      throw err;
    }
  }

  /** The purchase under way on a channel, if any. */
  intent(channelId: string): PurchaseIntent | undefined {
    const i = this.pending.get(channelId.toLowerCase());
    return i && structuredClone(i);
  }

  intents(): PurchaseIntent[] {
    return [...this.pending.values()].map((i) => structuredClone(i));
  }

  /** Writes a channel's purchase intent (replacing the one before) and resolves once it is on flash. */
  async putIntent(intent: PurchaseIntent): Promise<void> {
    const id = intent.channelId.toLowerCase();
    const before = this.pending.get(id);
    this.pending.set(id, structuredClone({ ...intent, channelId: id }));
    try {
      await this.flush();
    } catch (err) {
      if (before) this.pending.set(id, before);
      else this.pending.delete(id);
      throw err;
    }
  }

  /** Drops a channel's purchase intent (none: nothing written). */
  async dropIntent(channelId: string): Promise<void> {
    const id = channelId.toLowerCase();
    const before = this.pending.get(id);
    if (!before) return;
    this.pending.delete(id);
    try {
      await this.flush();
    } catch (err) {
      this.pending.set(id, before);
      throw err;
    }
  }

  /** Serialized: each write is the whole table as it stands when it starts. */
  private flush(): Promise<void> {
    return this.channels.flush();
  }
}

function storeError(message: string, cause?: unknown): SluiceError {
  return new SluiceError(
    'ERR_BATCH_STORE',
    cause instanceof Error ? `${message}: ${cause.message}` : message,
    cause === undefined ? {} : { cause },
  );
}
