// tier: peers; needs initdb
/**
 * Two collectors on one host: the second started with the dashboard address the first holds (the default
 * 127.0.0.1:8080 of both) exits 1 with a line saying what to do, before it subscribes anything — not a crash on an
 * unhandled EADDRINUSE.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/net.ts';
import { freshDb, Postgres } from './rig.ts';

let pg: Postgres;
test.before(async () => {
  pg = await Postgres.create();
});
test.after(async () => {
  await pg?.close();
});

test('--listen on an address in use: a clear error and exit 1, nothing subscribed', async () => {
  const db = await freshDb(pg);
  const [row] = await db.query<{ d: string }>('SELECT current_database() AS d');
  await db.close();
  const port = await freePort();
  // The first collector's dashboard, as far as the second can tell.
  const first = createServer();
  await new Promise<void>((r) => first.listen(port, '127.0.0.1', r));
  const broker = `mqtt://127.0.0.1:${await freePort()}`;
  let out = '';
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/fleet/main.ts', '--db', pg.url(row!.d), '--broker', broker].concat([
      '--listen',
      `127.0.0.1:${port}`,
    ]),
    { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  first.close();
  assert.is(code, 1, out);
  assert.match(out, /cannot serve the dashboard on 127\.0\.0\.1:\d+ \(EADDRINUSE\).*own --listen/);
  assert.not.match(out, /collector started|Unhandled|\n\s+at /, out);
});

test.run();
