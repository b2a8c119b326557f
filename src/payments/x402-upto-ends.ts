/**
 * Where `upto` meets the sessions, as batch-settlement's ends do: a session paid by an upto authorization is settled
 * what it used when its end is on flash (EndRecordsTap), not on the `ended` event: a settle for an end a kill -9
 * then lost would leave the session ACTIVE after the restart with its authorization already spent. At start,
 * `reconcile` settles the authorizations whose sessions ended while sluice was down, releases those no session holds
 * (a grant the journal never got: nothing used, nothing settled) and asks again for the amounts on flash without an
 * answer.
 */
import { toSluiceError } from '../errors.ts';
import type { UptoConfig } from '../config/index.ts';
import type { Log } from '../log.ts';
import { loadEvm, UptoStore } from '../x402/index.ts';
import { isLive, type Session, type SessionEventsView, type SessionReadView } from '../sessions/index.ts';
import type { EndRecordsTap } from './end-records.ts';
import { UPTO_METHOD_NAME, UptoMethod } from './x402-upto.ts';

export interface UptoEndsOptions {
  method: UptoMethod;
  sessions: SessionReadView & SessionEventsView;
  endsWritten: Pick<EndRecordsTap, 'onEndsWritten'>;
  log: Log;
}

function uptoRefsOf(s: Session): string[] {
  return s.payments.filter((p) => p.method === UPTO_METHOD_NAME).map((p) => p.reference);
}

/**
 * A session's usage split across its upto authorizations in payment order, each taking at most what its ceiling
 * buys (`capacities`, bytes or seconds), the last taking what is left: a top-up's authorization pays for usage past
 * the first one's allotment, never for the same usage twice.
 */
export function allocateUsage(used: bigint, capacities: readonly bigint[]): bigint[] {
  let left = used < 0n ? 0n : used;
  return capacities.map((cap, i) => {
    const share = i === capacities.length - 1 || left < cap ? left : cap;
    left -= share;
    return share;
  });
}

export class UptoEnds {
  /** Sessions ended whose end record is not durable yet: their references and what they used. */
  private readonly endsUnwritten = new Map<string, { refs: string[]; used: bigint }>();

  constructor(private readonly options: UptoEndsOptions) {
    options.sessions.on('ended', (s) => {
      const refs = uptoRefsOf(s);
      if (refs.length > 0) this.endsUnwritten.set(s.id, { refs, used: BigInt(s.used) });
    });
    options.endsWritten.onEndsWritten((ids) => {
      for (const id of ids) {
        const end = this.endsUnwritten.get(id);
        if (!end) continue;
        this.endsUnwritten.delete(id);
        void this.settleAll(end.refs, end.used);
      }
    });
  }

  private async settleAll(refs: readonly string[], used: bigint): Promise<void> {
    const shares = allocateUsage(used, refs.map((r) => this.options.method.capacity(r) ?? 0n));
    for (const [i, ref] of refs.entries()) await this.settle(ref, shares[i] ?? 0n);
  }

  private async settle(reference: string, used: bigint): Promise<void> {
    try {
      await this.options.method.settle(reference, used);
    } catch (err) {
      // Nothing on flash changed (the amount is written before /settle): the next start settles it.
      this.options.log.warn('upto settle not written; the next start settles it', { reference, reason: toSluiceError(err).message });
    }
  }

  /** At start, after the sessions' recovery: every open authorization against the journal, then the pending settles. */
  async reconcile(): Promise<void> {
    const holders = new Map<string, Session>();
    for (const s of this.options.sessions.list({})) for (const ref of uptoRefsOf(s)) holders.set(ref, s);
    const ended = new Set<Session>();
    for (const reference of this.options.method.openReferences()) {
      const s = holders.get(reference);
      if (s && isLive(s)) continue;
      if (s) ended.add(s);
      else await this.options.method.release({ method: UPTO_METHOD_NAME, reference, amount: 0n, asset: '', at: 0 });
    }
    // Each ended session's usage split as at a live end (an authorization settled already takes its share, settles nothing).
    for (const s of ended) await this.settleAll(uptoRefsOf(s), BigInt(s.used));
    await this.options.method.retryPending();
  }
}

/** The parts of `upto` the daemon runs, built from its config section. */
export interface UptoPart {
  method: UptoMethod;
  ends: UptoEnds;
}

export interface OpenUptoOptions {
  config: UptoConfig;
  stateDir: string;
  sessions: SessionReadView & SessionEventsView;
  endsWritten: Pick<EndRecordsTap, 'onEndsWritten'>;
  log: Log;
}

/** Opens the upto table (ERR_UPTO_STORE if it cannot be read back) and builds the method and its ends. */
export async function openUpto(o: OpenUptoOptions): Promise<UptoPart> {
  // viem, for the Permit2 digest hashed synchronously (x402/evm-loader.ts): loaded when the method opens.
  await loadEvm();
  const store = await UptoStore.open(o.stateDir);
  const method = new UptoMethod(o.config, { store, log: o.log });
  const ends = new UptoEnds({ method, sessions: o.sessions, endsWritten: o.endsWritten, log: o.log });
  return { method, ends };
}
