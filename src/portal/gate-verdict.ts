/**
 * What the valve makes of a client's portal state before (and after a refused) auth: open already, to be authed, or
 * an error that says why not (valve-open.ts).
 */
import { SluiceError } from '../errors.ts';
import { GATE_OPEN_STATES, type PortalClient } from './types.ts';

/** States in which the gate is already open: auth would fail (rc 1) and must not be tried. */
export const OPEN_STATES: ReadonlySet<string> = /* @__PURE__ */ new Set(GATE_OPEN_STATES);
const BLOCKED_STATES = /* @__PURE__ */ new Set(['Blocked']);

/**
 * What open() does with the client's state before an auth: 'auth' (Preauthenticated, or unknown with `preemptive`),
 * 'already-open', or an error (unknown, blocked, another state). `cause`: the auth's refusal, when asked after it.
 */
export function classify(
  mac: string,
  client: PortalClient | null,
  preemptive: boolean,
  cause?: unknown,
): 'auth' | 'already-open' {
  if (client !== null && OPEN_STATES.has(client.state)) return 'already-open';
  const withCause = cause === undefined ? {} : { cause };
  if (client !== null && BLOCKED_STATES.has(client.state)) {
    throw new SluiceError('ERR_PORTAL_CLIENT_BLOCKED', `client ${mac} is blocked in the portal`, {
      ...withCause,
      details: { mac },
    });
  }
  if (client === null) {
    if (preemptive) return 'auth';
    throw new SluiceError('ERR_PORTAL_CLIENT_UNKNOWN', `the portal has not seen client ${mac} yet`, {
      ...withCause,
      details: { mac },
    });
  }
  if (client.state !== 'Preauthenticated') {
    throw new SluiceError('ERR_PORTAL_CLIENT_STATE', `client ${mac} is in portal state ${client.state}`, {
      ...withCause,
      details: { mac, state: client.state },
    });
  }
  return 'auth';
}
