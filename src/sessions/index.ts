/** Public surface of the sessions area: model, lifecycle, manager and the views of it other folders hold, stores. */
export type { EndCause, Metric, PaymentRef, Session, SessionRates, SessionState } from './model.ts';
export {
  devicesOf,
  isLive,
  paymentTotals,
  remaining,
  remainingNumber,
  SESSION_STATES,
  TERMINATE_CAUSES,
  usedAt,
} from './model.ts';
export type { PaidEvent } from './end-replay.ts';
export type { Grant } from './grant.ts';
export { MAX_ALLOTMENT_BYTES, MAX_ALLOTMENT_SECONDS } from './grant.ts';
export { SessionManager } from './manager.ts';
export type { Hold } from './holds.ts';
export type { SessionFigures, SessionNumbers, UsageReport } from './manager-types.ts';
export type {
  SessionBillingPort,
  SessionControlPort,
  SessionDevicesPort,
  SessionEventsView,
  SessionFiguresView,
  SessionPurchasePort,
  SessionReadView,
  SessionSalesView,
} from './ports.ts';
export { limitsAfter } from './limits.ts';
export { JournalStore } from './journal.ts';
export { Emitter } from './events.ts';
export { EndRecordsTap, afterEndOnFlash } from './end-records.ts';
export { MarkingStore } from './marking-store.ts';
export { openSessions } from './open.ts';
