/**
 * The customer's pay page (GET /portal and its scripts): files from `portalDir` (/usr/share/sluice/portal on the
 * router), only the page's own and the methods' scripts, served with `no-store` under a CSP that keeps the page talking
 * to this endpoint alone.
 */
import { readFile, stat, type Stats } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { LanMethod } from '../payments/index.ts';
import { send } from './reply.ts';

const JAVASCRIPT = 'text/javascript; charset=utf-8';
/**
 * The pay page's own files and their types; with the methods' scripts (PluginRegistrars.pageScript), nothing else in
 * portalDir is served.
 */
const PORTAL_FILES: Record<string, [string, string]> = {
  '/portal': ['index.html', 'text/html; charset=utf-8'],
  '/portal.js': ['portal.js', JAVASCRIPT],
  '/devices.js': ['devices.js', JAVASCRIPT],
  '/restore.js': ['restore.js', JAVASCRIPT],
  '/qr.js': ['qr.js', JAVASCRIPT],
  '/elsewhere.js': ['elsewhere.js', JAVASCRIPT],
};

/** The pay page's files by path: its own and the methods' scripts (PluginRegistrars.pageScript). */
export function portalFilesOf(methods: readonly LanMethod[]): Record<string, [string, string]> {
  const scripts = methods.flatMap((m) => m.pageScripts.map((file) => [`/${file}`, [file, JAVASCRIPT]]));
  return { ...PORTAL_FILES, ...Object.fromEntries(scripts) };
}

/** A file's bytes as read, under the identity it had then. */
interface Kept {
  ino: number;
  size: number;
  mtimeMs: number;
  bytes: Buffer;
}

/**
 * The pay page's files kept in memory once served, each checked by one stat at every request and read again when its
 * inode, size or modification time differs from the ones its bytes were read under: an owner's edit of index.html
 * (in place, or a new file renamed over it) shows at the next page load. A stat is one request on libuv's pool where
 * a read was four (open, fstat, read, close), and a page load asks for the page and up to eight scripts. forget()
 * drops them all (the endpoint's serve(), at each reload): on a file system whose times count whole seconds (jffs2),
 * an edit in place that keeps the size within the second of the read shows after a reload. Holds the files served
 * only: ~90 KB for the page and its own scripts, ~110 KB more with the Cashu and batch-settlement scripts.
 */
export class PortalFiles {
  private readonly kept = new Map<string, Kept>();

  forget(): void {
    this.kept.clear();
  }

  /** The file's bytes; rejects as fs does (missing, unreadable). */
  async bytes(path: string): Promise<Buffer> {
    const now = await new Promise<Stats>((resolve, reject) =>
      stat(path, (err, s) => (err ? reject(err) : resolve(s))),
    ).catch((err: unknown) => {
      this.kept.delete(path);
      throw err;
    });
    const kept = this.kept.get(path);
    if (kept && kept.ino === now.ino && kept.size === now.size && kept.mtimeMs === now.mtimeMs) return kept.bytes;
    // fs's callback readFile, not fs/promises': a FileHandle's promise machinery (its open, stat, reads and close) cost
    // a read of index.html a quarter more CPU.
    const bytes = await new Promise<Buffer>((resolve, reject) =>
      readFile(path, (err, b) => (err ? reject(err) : resolve(b))),
    );
    // Kept under the identity stat saw before the read: a change during the read is seen at the next request.
    this.kept.set(path, { ino: now.ino, size: now.size, mtimeMs: now.mtimeMs, bytes });
    return bytes;
  }
}

export async function portalFile(
  res: ServerResponse,
  files: PortalFiles,
  dir: string | null | undefined,
  [file, type]: [string, string],
): Promise<void> {
  let text: Buffer;
  try {
    if (!dir) throw new Error('no portal directory');
    text = await files.bytes(join(dir, file));
  } catch {
    return send(res, 404, { error: { code: 'ERR_HTTP_NOT_FOUND', message: 'the pay page is not installed' } });
  }
  // The page talks only to this endpoint; a wallet extension's injected provider is not a fetch, so it still works.
  res
    .writeHead(200, {
      'content-type': type,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'content-security-policy':
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    })
    .end(text);
}
