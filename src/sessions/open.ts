/**
 * The sessions opened at start: the journal store, the session manager over it and its recovery, logged. The store is
 * reached through two taps: the end records (a method settles or closes once a session's end is on flash:
 * end-records.ts) and the marking store (the meter's marks journaled with a session, wired once the meter is built:
 * MarkingStore.markWith).
 */
import type { Config, PricingPlan } from '../config/index.ts';
import type { Log } from '../log.ts';
import { EndRecordsTap } from './end-records.ts';
import { JournalStore } from './journal.ts';
import { ramSealPath } from './journal-seal.ts';
import { SessionManager } from './manager.ts';
import { MarkingStore } from './marking-store.ts';
import type { PaidEvent } from './end-replay.ts';
import type { Session, SessionRates } from './model.ts';

export interface OpenedSessions {
  store: JournalStore;
  endRecords: EndRecordsTap;
  markingStore: MarkingStore;
  sessions: SessionManager;
  /** The sessions recovery ended (time or data ran out while the daemon was down): the gate's start closes them. */
  endedWhileDown: readonly Session[];
  /**
   * What the sinks announce: the sessions recovered, what recovery ended, and the ends written just before the stop
   * whose announcement a crash may have cut off (each sink's end marks drop those it did announce), and the payments
   * written just before it likewise (the MQTT sink's payment marks drop those it did announce).
   */
  toAnnounce: { active: readonly Session[]; ended: readonly Session[]; payments: readonly PaidEvent[] };
}

export async function openSessions(
  config: Config,
  resetState: boolean | undefined,
  pricing: { find(id: string): PricingPlan | undefined },
  log: Log,
): Promise<OpenedSessions> {
  const { main } = config;
  const store = new JournalStore({
    dir: main.stateDir,
    sealCopy: ramSealPath(main.stateDir),
    ...(resetState === true && { resetState: true }),
    onWarning: (err) => log.warn('journal', { code: err.code, reason: err.message }),
  });
  const endRecords = new EndRecordsTap(store);
  const markingStore = new MarkingStore(endRecords);
  // A session's speed tier is journaled with it: its plan's at the sale (a reload's new rates apply to new sales), a
  // voucher's own, or a live change's; a session journaled before sessions carried rates gets its plan's at recovery.
  const planRates = (id: string): SessionRates | null => {
    const plan = pricing.find(id);
    return plan === undefined || (plan.rateDownBps === undefined && plan.rateUpBps === undefined)
      ? null
      : { downBps: plan.rateDownBps ?? null, upBps: plan.rateUpBps ?? null };
  };
  const sessions = new SessionManager({
    store: markingStore,
    limits: config.limits,
    checkpointIntervalMs: main.checkpointIntervalMs,
    planRates,
  });
  const recovery = await sessions.recover();
  for (const w of recovery.warnings) log.warn('recovery', { code: w.code, reason: w.message });
  log.info('sessions recovered', { active: recovery.active.length, ended_while_down: recovery.ended.length });
  const toAnnounce = {
    active: recovery.active,
    ended: [...recovery.ended, ...recovery.lastEnds],
    payments: recovery.lastPayments,
  };
  sessions.on('warning', (err) => log.warn('sessions', { code: err.code, reason: err.message }));
  return { store, endRecords, markingStore, sessions, endedWhileDown: recovery.ended, toAnnounce };
}
