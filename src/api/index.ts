export { sluiceObject } from './object.ts';
export { methodTable } from './methods.ts';
export { paymentOf } from './payment.ts';
export { sessionView } from './view.ts';
export type { SluiceBackend, PurchaseOutcome } from './backend.ts';
export { EventPublisher } from './events.ts';
export { DaemonBackend } from './daemon-backend.ts';
export { adminCallLogging } from './caller.ts';
export { DaemonPort } from './daemon-port.ts';
