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
import { DEFAULT_SOCKET_PATHS, findPortalSocket, isSocket } from './socket-transport.ts';

export const STOCK_NDSCTL = '/usr/bin/ndsctl';

export function portalSocketResolver(main: { ndsctl: readonly string[]; ndsctlSocket: string }): () => string | undefined {
  const setting = main.ndsctlSocket;
  if (setting === 'off') return () => undefined;
  if (setting === 'auto') {
    const stock = main.ndsctl.length === 1 && main.ndsctl[0] === STOCK_NDSCTL;
    return stock ? () => findPortalSocket(DEFAULT_SOCKET_PATHS) : () => undefined;
  }
  return () => (isSocket(setting) ? setting : undefined);
}
