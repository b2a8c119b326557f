/**
 * Bounds on a LAN door's open connections, so that no client (and no crowd of them) can take the descriptors
 * the portal calls, the meter's worker and the journal need: every socket is a file descriptor, and at the process's
 * limit every spawn, connect and open fails with EMFILE.
 *   - in total: a quarter of the process's descriptor limit (`/proc/self/limits`), at most MAX_TOTAL;
 *   - per client IP: MAX_PER_IP (a browser opens about six to one host).
 * Connections past a bound are closed as soon as they are accepted; the ones that stay are timed out by the server
 * (headers, request, keep-alive), so a bound once reached frees itself.
 */
import { readFileSync } from 'node:fs';
import type { Server, Socket } from 'node:net';

export const MAX_TOTAL = 256;
export const MAX_PER_IP = 16;
/**
 * The endpoint's share of the descriptor limit: the rest stays for the portal, the worker, the journal, ubus, sinks.
 */
const SHARE_OF_FD_LIMIT = 4;

/** The process's soft limit on open files, or null where /proc does not say (not Linux). */
export function openFileLimit(read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(read());
    if (!m) return null;
    return m[1] === 'unlimited' ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/** The endpoint's total bound for a descriptor limit (null: unknown, MAX_TOTAL). At least one connection. */
export function totalConnectionBound(fdLimit: number | null): number {
  if (fdLimit === null) return MAX_TOTAL;
  return Math.max(1, Math.min(MAX_TOTAL, Math.floor(fdLimit / SHARE_OF_FD_LIMIT)));
}

export interface ConnectionLimits {
  total: number;
  perIp: number;
}

/** The client IP a socket counts against (IPv4 clients of a dual-stack socket arrive as ::ffff:a.b.c.d). */
export function clientIpOf(socket: { remoteAddress?: string | undefined }): string {
  return (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
}

/**
 * Applies the bounds to `server`: the total through Node's own maxConnections (it closes the socket at accept), the
 * per-IP count here, in `perIp` (shared by the sockets of one door while a move drains the old one). Returns the live
 * count per IP (for stats and tests).
 */
export function limitConnections(
  server: Server,
  limits: ConnectionLimits,
  perIp = new Map<string, number>(),
): ReadonlyMap<string, number> {
  server.maxConnections = limits.total;
  server.on('connection', (socket: Socket) => {
    const ip = clientIpOf(socket);
    const open = perIp.get(ip) ?? 0;
    if (open >= limits.perIp) {
      socket.destroy();
      return;
    }
    perIp.set(ip, open + 1);
    socket.once('close', () => {
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left <= 0) perIp.delete(ip);
      else perIp.set(ip, left);
    });
  });
  return perIp;
}
