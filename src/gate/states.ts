/** What a gate is after a purchase asked for it, and after a session end asked to close it (the API's reply fields). */
/** `closed`: the session ended while its purchase or top-up was written (a racing terminate); it has no gate. */
export type GateState = 'opened' | 'already-open' | 'opening' | 'pending' | 'closed';

/**
 * A closing gate after a session ended (terminate, logout, the `ended` event): `closed` once the portal answered the
 * deauth, `closing` when it did not answer within the reply's bounded wait (it keeps trying), `failed` when it refused
 * or could not be reached (retried on every tick until the portal's list shows the gate shut).
 */
export type GateCloseState = 'closed' | 'closing' | 'failed';
