/**
 * Which control socket the valve speaks, from `main.ndsctl_socket` and `main.ndsctl`. Asked before every call, so a
 * portal that starts after sluice (or restarts and recreates its socket) is picked up, and a missing socket falls
 * back to the ndsctl command instead of failing.
 * - 'off': always the command.
 * - 'auto': the portals' default places, but only while `main.ndsctl` is the stock /usr/bin/ndsctl: a custom command
 *   (a wrapper entering a network namespace, a test stand-in) says the portal is reached some other way, and a socket
 *   that happens to exist in this namespace would be the wrong portal.
 * - a path: that socket while it exists, else the command.
 */
import { statSync } from 'node:fs';
import { DEFAULT_SOCKET_PATHS, findPortalSocket, isSocket } from './socket-transport.ts';

export const STOCK_NDSCTL = '/usr/bin/ndsctl';

export function portalSocketResolver(main: {
  ndsctl: readonly string[];
  ndsctlSocket: string;
}): () => string | undefined {
  const setting = main.ndsctlSocket;
  if (setting === 'off') return () => undefined;
  if (setting === 'auto') {
    const stock = main.ndsctl.length === 1 && main.ndsctl[0] === STOCK_NDSCTL;
    return stock ? () => findPortalSocket(DEFAULT_SOCKET_PATHS) : () => undefined;
  }
  return () => (isSocket(setting) ? setting : undefined);
}

/**
 * The control socket `socketPath()` names as device:inode, undefined when there is none: a portal that restarts makes
 * its socket anew (a new inode), so a new identity is a restarted portal, which forgot every gate (the meter on the
 * kernel's counters lists it then: meter/listing-policy.ts).
 */
export function portalSocketIdentity(socketPath: () => string | undefined): () => string | undefined {
  return () => {
    const path = socketPath();
    if (path === undefined) return undefined;
    try {
      const st = statSync(path);
      return `${st.dev}:${st.ino}`;
    } catch {
      return undefined;
    }
  };
}
