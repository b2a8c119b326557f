export { sluiceObject, invokeMethod } from './object.ts';
export { paymentOf } from './payment.ts';
export { sessionView, planView } from './view.ts';
export type { SluiceBackend, PurchaseOutcome } from './backend.ts';
export { EventPublisher } from './events.ts';
export { DaemonBackend } from './daemon-backend.ts';
export { statsReply } from './stats.ts';
export { adminCallLogging } from './caller.ts';
