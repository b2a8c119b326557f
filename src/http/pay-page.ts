/**
 * The customer's pay page (GET /portal and its scripts): files from `portalDir` (/usr/share/sluice/portal on the
 * router), only the page's own and the methods' scripts, served uncached under a CSP that keeps the page talking to
 * this endpoint alone.
 */
import { readFile } from 'node:fs';
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

export async function portalFile(
  res: ServerResponse,
  dir: string | null | undefined,
  [file, type]: [string, string],
): Promise<void> {
  let text: Buffer;
  try {
    if (!dir) throw new Error('no portal directory');
    // fs's callback readFile, not fs/promises': a FileHandle's promise machinery (its open, stat, reads and close) cost
    // a read of index.html a quarter more CPU, and a page load reads it and its eight scripts.
    text = await new Promise<Buffer>((resolve, reject) =>
      readFile(join(dir, file), (err, bytes) => (err ? reject(err) : resolve(bytes))),
    );
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
