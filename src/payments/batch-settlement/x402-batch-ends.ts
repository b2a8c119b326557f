/**
 * Where `batch-settlement` meets the sessions: a session paid by a voucher is charged what it used when its end is
 * on flash (EndRecordsTap), not on the `ended` event: a charge for an end a kill -9 then lost would leave the session
 * ACTIVE after the restart with its channel already charged and free to pay for another. At start, `reconcile`
 * charges the open charges whose sessions ended while sluice was down, and drops those no session holds (a grant the
 * journal never got: nothing was used, nothing is charged), then asks about the deposit purchases a crash left between
 * their /settle and their grant (x402-batch-intent.ts).
 */
import { toSluiceError } from '../../errors.ts';
import type { BatchSettlementConfig } from '../../config/index.ts';
import { BatchChannelStore } from './batch-channels.ts';
import { loadEvm } from '../../x402/index.ts';
import type { Log } from '../../log.ts';
import {
  isLive,
  type Session,
  type SessionControlPort,
  type SessionEventsView,
  type SessionReadView,
} from '../../sessions/index.ts';
import { afterEndOnFlash, type EndRecordsTap } from '../../sessions/index.ts';
import { BATCH_METHOD_NAME } from './method-name.ts';
import { BatchSettlementMethod } from './x402-batch.ts';
import { BatchSettler } from './x402-batch-settler.ts';
import { BatchWithdrawalWatch } from './x402-batch-watch.ts';

export interface BatchEndsOptions {
  method: BatchSettlementMethod;
  settler: BatchSettler;
  sessions: SessionReadView & SessionEventsView;
  endsWritten: Pick<EndRecordsTap, 'onEndsWritten'>;
  log: Log;
}

function batchRefsOf(s: Session): string[] {
  return s.payments.filter((p) => p.method === BATCH_METHOD_NAME).map((p) => p.reference);
}

export class BatchSettlementEnds {
  constructor(private readonly options: BatchEndsOptions) {
    afterEndOnFlash(
      options.sessions,
      options.endsWritten,
      (s) => {
        const refs = batchRefsOf(s);
        return refs.length > 0 ? { refs, used: BigInt(s.used) } : undefined;
      },
      (end) => {
        for (const ref of end.refs) void this.charge(ref, end.used);
      },
    );
  }

  private async charge(reference: string, used: bigint): Promise<void> {
    try {
      await this.options.method.charge(reference, used);
      this.options.settler.charged();
    } catch (err) {
      // The charge stays open on flash: the next start's reconcile charges it.
      this.options.log.warn('batch-settlement charge not written; the next start charges it', {
        reference,
        reason: toSluiceError(err).message,
      });
    }
  }

  /** At start, after the sessions' recovery: every open charge against the journal. */
  async reconcile(): Promise<void> {
    const holders = new Map<string, Session>();
    for (const s of this.options.sessions.list({})) for (const ref of batchRefsOf(s)) holders.set(ref, s);
    for (const { reference } of this.options.method.openCharges()) {
      const s = holders.get(reference);
      if (s && isLive(s)) continue;
      if (s) await this.charge(reference, BigInt(s.used));
      else await this.options.method.release({ method: BATCH_METHOD_NAME, reference, amount: 0n, asset: '', at: 0 });
    }
    // Deposit purchases a crash cut between their /settle and their grant: did the money land? Not awaited:
    // an intent binds its channel to its device whatever the answer, and a facilitator that is down must not hold the
    // start.
    void this.options.method.reconcileIntents().catch(() => undefined);
  }
}

/** The parts of `batch-settlement` the daemon runs, built from its config section. */
export interface BatchSettlementPart {
  method: BatchSettlementMethod;
  settler: BatchSettler;
  ends: BatchSettlementEnds;
  /** The customer's timed withdrawal while a session is open (x402-batch-watch.ts). */
  watch: BatchWithdrawalWatch;
}

export interface OpenBatchSettlementOptions {
  config: BatchSettlementConfig;
  stateDir: string;
  sessions: SessionReadView & SessionEventsView & Pick<SessionControlPort, 'end'>;
  endsWritten: Pick<EndRecordsTap, 'onEndsWritten'>;
  log: Log;
  /** Opened at the daemon's start (PluginHost.atStart): its table is read synchronously. */
  atStart?: boolean;
}

/**
 * Opens the channel table (ERR_BATCH_STORE if it cannot be read back) and builds the method, its settler and its ends.
 */
export async function openBatchSettlement(o: OpenBatchSettlementOptions): Promise<BatchSettlementPart> {
  // viem, for the channel ids and digests hashed synchronously (x402/evm-loader.ts): loaded when the method opens.
  await loadEvm();
  const store = await BatchChannelStore.open(o.stateDir, { atStart: o.atStart === true });
  let settler: BatchSettler | undefined;
  const method = new BatchSettlementMethod(o.config, {
    store,
    log: o.log,
    onCharged: (r) => settler?.charged(r),
    onRefundRequested: () => settler?.pass() ?? Promise.resolve(),
    // A voucher tops up the channel's open session only while that session is live.
    isLive: (reference) => o.sessions.list({}).some((s) => isLive(s) && batchRefsOf(s).includes(reference)),
  });
  settler = new BatchSettler({ method, store, log: o.log });
  const watch = new BatchWithdrawalWatch({
    method,
    store,
    log: o.log,
    endSession: async (reference, reason) => {
      const s = o.sessions.list({}).find((x) => isLive(x) && batchRefsOf(x).includes(reference));
      if (!s) return false;
      // No end cause of its own yet (the causes are the sessions'): a termination by the router, the reason in the log.
      const ended = await o.sessions.end(s.id, 'admin');
      if (ended)
        o.log.warn('batch-settlement: session ended: its channel is being withdrawn', {
          session: s.id,
          mac: s.mac,
          reference,
          reason,
        });
      return ended !== null;
    },
  });
  const ends = new BatchSettlementEnds({
    method,
    settler,
    sessions: o.sessions,
    endsWritten: o.endsWritten,
    log: o.log,
  });
  return { method, settler, ends, watch };
}
