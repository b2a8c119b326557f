/**
 * What the cashu method waits on at its mints before a swap or an invoice: one client per mint (bounded, ended at
 * stop), each mint's keysets read now (and kept for pricing a token, which cannot wait for the network), and each
 * keyset's keys (immutable, kept once read). Every read counts in MintHealth (ubus cashu_balance).
 */
import { SluiceError, toSluiceError } from '../../errors.ts';
import type { Log } from '../../log.ts';
import type { Clock } from '../../time.ts';
import { makeOutputs, MintQuoteClient, splitAmount, type KeysetEntry, type SwapOutput } from '../../cashu/index.ts';
import { MintHealth } from './mint-health.ts';
import { unavailable } from './resolve-intent.ts';

/** A swap's own deadline: it goes on after the purchase answered pending. */
const SWAP_TIMEOUT_MS = 60_000;
/** Keysets, keys, checkstate, restore. */
const READ_TIMEOUT_MS = 5_000;

export interface MintReadsOptions {
  clock: Clock;
  signal: AbortSignal;
  log?: Log | undefined;
}

export class MintReads {
  private readonly clients = new Map<string, MintQuoteClient>();
  private readonly keysets = new Map<string, KeysetEntry[]>();
  private readonly keys = new Map<string, Record<string, string>>();
  /** Each mint's last answer (shared with the custody, whose reads count too). */
  readonly health = new MintHealth();

  constructor(private readonly options: MintReadsOptions) {}

  client(mint: string): MintQuoteClient {
    let c = this.clients.get(mint);
    if (!c) {
      c = new MintQuoteClient(mint, {
        timeoutMs: READ_TIMEOUT_MS,
        swapTimeoutMs: SWAP_TIMEOUT_MS,
        signal: this.options.signal,
      });
      this.clients.set(mint, c);
    }
    return c;
  }

  /** The keysets last read from `mint`, if any (what a token is priced with before precheck reads them again). */
  known(mint: string): KeysetEntry[] | undefined {
    return this.keysets.get(mint);
  }

  /** The mint's keysets read now, and kept. */
  async freshKeysets(mint: string): Promise<KeysetEntry[]> {
    const answer = await this.client(mint).keysets();
    if (answer.kind !== 'ok') throw this.health.failed(mint, this.options.clock.now(), unavailable(mint, answer));
    this.health.answered(mint, this.options.clock.now());
    this.keysets.set(mint, answer.value);
    return answer.value;
  }

  /** Reads every mint's keysets (at start and on reload); one that cannot be read is logged and read at its token. */
  async refresh(mints: readonly string[]): Promise<void> {
    await Promise.all(
      mints.map((m) =>
        this.freshKeysets(m).catch((err: unknown) => {
          this.options.log?.warn("cashu: a mint's keysets cannot be read; its tokens are refused until they can", {
            mint: m,
            reason: toSluiceError(err).message,
          });
        }),
      ),
    );
  }

  /** A keyset's keys (amount → public key), read once. */
  async keysOf(mint: string, id: string): Promise<Record<string, string>> {
    const known = this.keys.get(id);
    if (known) return known;
    const answer = await this.client(mint).keys(id);
    if (answer.kind !== 'ok') throw unavailable(mint, answer);
    this.keys.set(id, answer.value);
    return answer.value;
  }

  /**
   * Fresh outputs (secrets and blinding factors) worth `amount` on the active `unit` keyset of `keysets`, split into
   * the amounts its keys sign.
   */
  async outputsFor(mint: string, keysets: readonly KeysetEntry[], unit: string, amount: bigint): Promise<SwapOutput[]> {
    const active = keysets.find((k) => k.active && k.unit === unit);
    if (!active) throw new SluiceError('ERR_CASHU_MINT_UNAVAILABLE', `the mint lists no active ${unit} keyset`);
    const keys = await this.keysOf(mint, active.id);
    const amounts = Object.keys(keys).map((a) => BigInt(a));
    return makeOutputs(splitAmount(amount, amounts), active.id);
  }
}
