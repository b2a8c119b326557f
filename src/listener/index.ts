/**
 * What every HTTP door on the LAN shares (a leaf: the LAN endpoint in http/ and the payment methods' own doors use it
 * alike): the listener with its bind and move (listener.ts), the connection bounds, the per-IP token buckets and the
 * bounded body reads.
 */
export { Listener } from './listener.ts';
export { clientIpOf, openFileLimit, totalConnectionBound } from './connection-limits.ts';
export { DoorLimits } from './rate-limit.ts';
export { parseJsonObject, readBodyBytes, readJsonBody } from './body.ts';
export { BindAgain } from './bind-again.ts';
