export { sluiceObject, invokeMethod, errorReply, OBJECT_PATH } from './object.ts';
export type { ApiObjectOptions } from './object.ts';
export { METHODS } from './methods.ts';
export type { ApiMethod } from './methods.ts';
export { checkArgs, signatureOf, InvalidArgumentError } from './args.ts';
export { paymentOf } from './payment.ts';
export type { ArgSpec, ArgSpecs, ArgKind, ArgsOf, ArgValue, CheckedArgs } from './args.ts';
export { statusForCode } from './status.ts';
export { sessionView, quoteView, planView } from './view.ts';
export type {
  SluiceBackend, QuoteRecord, PurchaseOutcome, PurchaseRequest, GrantRequest, GateState, GateCloseState,
} from './backend.ts';
export { EventPublisher, SESSION_EVENT, SESSION_EVENT_KINDS, USAGE_EVENT_CHUNK, sessionEvent } from './events.ts';
export type { CreditFields, EscrowEventSource, EventPublisherOptions, SessionEventKind, SessionEventPayloads, UsageEntry, UsageFact } from './events.ts';
export { DaemonBackend, GATE_REPLY_WAIT_MS, waitForClose } from './daemon-backend.ts';
export type { BackendParts } from './daemon-backend.ts';
export { statsReply, type StatsSources } from './stats.ts';
