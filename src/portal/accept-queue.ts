/**
 * The portal's accept queue as the kernel lists it in /proc/net/unix: a connection the portal has not accepted yet is
 * a socket bound to the listener's path with no file (St 02, SS_CONNECTING: the kernel prints that state for a socket
 * without a `struct socket`) and inode 0, an accepted one is St 03, the listener itself carries __SO_ACCEPTCON (flags
 * 00010000). openNDS and nodogsplash serve their control socket one connection at a time and close it when done, so "a
 * connection waits and none is being served" is the one state in which the portal sleeps with work queued: the state
 * accept-nudge.ts exists to end.
 */
import { readFile, realpath } from 'node:fs/promises';

export interface AcceptQueue {
  /**
   * The connections waiting to be accepted, by the kernel's (hashed) address of each: a socket not accepted yet has
   * no inode (0).
   */
  waiting: string[];
  /** Accepted connections still open: the portal is serving one (or a client has not sent its request yet). */
  serving: number;
}

const LISTENING = '00010000';
const UNACCEPTED = '02';
const ACCEPTED = '03';

/**
 * The listener's queue for `path` from /proc/net/unix text; undefined when no listener bound to a path that `path`
 * ends with is listed (the portal in another network namespace, not running, or a kernel without the file). A
 * suffix: sluice may reach the socket through another mount namespace (/proc/<pid>/root/tmp/ndsctl.sock), the kernel
 * lists the name the portal bound (/tmp/ndsctl.sock). The longest bound name that matches wins.
 */
export function parseAcceptQueue(text: string, path: string): AcceptQueue | undefined {
  const rows: Array<{ id: string; flags: string; state: string; bound: string }> = [];
  let listener: string | undefined;
  for (const line of text.split('\n')) {
    // Num RefCount Protocol Flags Type St Inode Path
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const bound = f.slice(7).join(' ');
    if (!bound.startsWith('/') || !path.endsWith(bound)) continue;
    const row = { id: f[0]!.replace(/:$/, ''), flags: f[3]!, state: f[5]!, bound };
    rows.push(row);
    if (row.flags === LISTENING && (listener === undefined || bound.length > listener.length)) listener = bound;
  }
  if (listener === undefined) return undefined;
  const queue: AcceptQueue = { waiting: [], serving: 0 };
  for (const r of rows) {
    if (r.bound !== listener || r.flags === LISTENING) continue;
    if (r.state === UNACCEPTED) queue.waiting.push(r.id);
    else if (r.state === ACCEPTED) queue.serving++;
  }
  return queue;
}

/**
 * Reads the queue now; undefined when it cannot be seen (see parseAcceptQueue). The path as given and as the file
 * system resolves it: OpenWrt's /var is a link to /tmp, and openNDS binds the name under its tmpfs mountpoint.
 */
export async function readAcceptQueue(path: string, file = '/proc/net/unix'): Promise<AcceptQueue | undefined> {
  try {
    const text = await readFile(file, 'utf8');
    return parseAcceptQueue(text, path) ?? parseAcceptQueue(text, await realpath(path));
  } catch {
    return undefined;
  }
}
