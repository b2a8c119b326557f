/** Public surface of the sessions area: model, lifecycle, manager, stores. */
export type { EndCause, LimitCause, MeterMark, Metric, PaymentRef, Session, SessionState, TerminateCause } from './model.ts';
export { END_CAUSES, KEPT_PAYMENTS, LIMIT_CAUSES, SESSION_STATES, TERMINATE_CAUSES, addPayment, isLive, paymentTotals, normalizeMac, paymentKeys, remaining, remainingNumber, usedAt, viewSession } from './model.ts';
export { activate, endSession, expire, isEndCause, isLimitCause, terminate } from './lifecycle.ts';
export type { Grant } from './grant.ts';
export { MAX_ALLOTMENT_BYTES, MAX_ALLOTMENT_SECONDS, validateGrant } from './grant.ts';
export { SessionManager } from './manager.ts';
export type { GrantDraft } from './manager.ts';
export type { Hold } from './holds.ts';
export type { RecoveryReport, SessionEvents, SessionFigures, SessionFilter, SessionNumbers, SessionManagerOptions, SessionStats } from './manager.ts';
export { DeadlineScheduler } from './deadlines.ts';
export type { Clock, Timers, TimerHandle } from './time.ts';
export { systemClock, systemTimers } from './time.ts';
export type { LoadResult, RetentionPolicy, SessionStore, StoreRecord, UsageEntry } from './store.ts';
export { DEFAULT_RETENTION } from './store.ts';
export { MemoryStore } from './memory-store.ts';
export { JournalStore } from './journal.ts';
export type { JournalOptions, JournalStats } from './journal.ts';
export { Emitter, type Listener } from './events.ts';
