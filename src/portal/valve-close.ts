/**
 * The valve's close inside its turn of the portal's queue (Valve.closeAndLook, Valve.closeAndCount): the deauth (by the
 * client's token when known), the kernel's side of the gate taken down after it, and what the caller asked to know
 * before or after it. Apart from valve.ts so the one turn reads as one piece.
 */
import { SluiceError } from '../errors.ts';
import type { NdsctlExec } from './runner.ts';
import type { TokenCalls } from './token-calls.ts';
import type { GateBrake, GateCounter, GateIpv6, GateShaper, PortalClient, PortalFlavour } from './types.ts';

export type CloseResult = 'closed' | 'not-found';

/** The valve's parts a close uses. */
export interface CloseParts {
  flavour: PortalFlavour | 'auto';
  byToken: TokenCalls;
  brake: GateBrake | undefined;
  counter: GateCounter | undefined;
  shaper: GateShaper | undefined;
  ipv6: GateIpv6 | undefined;
  /** `json <mac|token>`: the client the portal finds, or null. */
  read: (exec: NdsctlExec, target: string) => Promise<PortalClient | null>;
}

/**
 * One close in the caller's turn. `before`: run in the turn just before the deauth (the client's counters read while
 * the portal still has them: openNDS deletes them with the client). `look`: the client's state after the deauth
 * (null: not listed; undefined: not read).
 */
export async function closeInTurn(
  p: CloseParts,
  exec: NdsctlExec,
  canonical: string,
  o: { look: boolean; before?: (exec: NdsctlExec) => Promise<void> },
): Promise<{ result: CloseResult; state: string | null | undefined }> {
  let result: CloseResult;
  // The portal's own Yes on its control socket: it deleted the client from its list (below).
  let portalYes = false;
  // By token when known (see valve-open.ts), or as the BinAuth kept it at the auth; a no by token is asked again by
  // MAC.
  const token = p.flavour === 'opennds' ? await p.byToken.known(canonical) : undefined;
  await o.before?.(exec);
  try {
    const yes =
      (token === undefined ? null : await p.byToken.byToken(exec, canonical, ['deauth', token])) ??
      (await p.byToken.timed(exec, ['deauth', canonical], 'mac'));
    portalYes = yes.socket;
    result = 'closed';
  } catch (err) {
    if (!(err instanceof SluiceError) || err.code !== 'ERR_NDSCTL_REJECTED') throw err;
    result = 'not-found';
  }
  // openNDS gives a deauthed client a new token (9.x drops it from the list): this one is spent.
  p.byToken.tokens.forget(canonical);
  // The portal took its gate down (or never had it up): its splash page must reach the client again; its quota
  // and counters go in the same nft run (nft-batch.ts).
  await Promise.all([
    p.ipv6?.released?.(canonical),
    p.brake?.afterDeauth(canonical),
    p.counter?.afterDeauth(canonical),
  ]);
  await p.shaper?.remove(canonical);
  if (!o.look) return { result, state: undefined };
  // The portal answers a deauth Yes only once it took the client's gate down (auth.c auth_change_state): openNDS
  // (9.10, 10.3.1) deleted the client from its list, nodogsplash 5 keeps it Preauthenticated. A look would say so,
  // at openNDS 10.3.1's price of two nft listings and a script (≈ 70–110 ms of its CPU). Through an ndsctl
  // command the exit code may be a wrapper's: looked at.
  if (portalYes) return { result, state: p.flavour === 'nodogsplash' ? 'Preauthenticated' : null };
  // Read only: a client gone from the list after its deauth is not an unlisted one (Valve's #noteUnlisted).
  const after = await p.read(exec, canonical).catch(() => undefined);
  return { result, state: after === undefined ? undefined : (after?.state ?? null) };
}
