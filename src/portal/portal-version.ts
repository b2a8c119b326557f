/**
 * openNDS's version as it wrote it at start into `ndscids/ndsinfo` beside its control socket (`version=10.3.1`, a line
 * of its tmpfs database: 9.10 and 10.3.1 src/util.c write_ndsinfo), read without a call to the portal. Whether
 * `ndsctl status` is safe to ask depends on it: openNDS 9.x exits when that call's gateway check fails (src/util.c
 * check_routing, in the ndsctl thread: its commands race the main loop's, docs/captive-portal.md "Portal restarts"),
 * 10.x logs and goes on.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** ndsinfo holds a few short lines. */
const INFO_MAX_BYTES = 4096;

/** The `version=` of openNDS's ndsinfo text, or undefined. Pure. */
export function ndsinfoVersion(text: string): string | undefined {
  return /^version="?([0-9][0-9A-Za-z.+-]*)"?\s*$/m.exec(text)?.[1];
}

/** Whether this openNDS version logs a failed gateway check instead of exiting (10 or later). Pure. */
export function statusIsSafe(version: string | undefined): boolean {
  const major = Number(/^(\d+)\./.exec(version ?? '')?.[1]);
  return Number.isInteger(major) && major >= 10;
}

/** The version openNDS wrote beside the socket `socketPath` names, undefined when it cannot be read. Never throws. */
export async function openNdsVersion(socketPath: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(join(dirname(socketPath), 'ndscids', 'ndsinfo'), constants.O_RDONLY | constants.O_NOFOLLOW);
    const st = await handle.stat();
    if (!st.isFile()) return undefined;
    const buf = Buffer.alloc(INFO_MAX_BYTES);
    const { bytesRead } = await handle.read(buf, 0, INFO_MAX_BYTES, 0);
    return ndsinfoVersion(buf.toString('latin1', 0, bytesRead));
  } catch {
    return undefined;
  } finally {
    await handle?.close().catch(() => {});
  }
}
