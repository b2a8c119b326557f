// tier: daemon
/**
 * sluice's own gate (`main.portal 'sluice'`: src/gate/own-gate.ts, own-valve.ts and src/portal/own-gate*.ts) is read
 * by gate/portal.ts only under that portal, in chunks of its own: a daemon whose portal is openNDS never loads them
 * (docs/performance.md, "Idle memory"). Checked on a copy of dist/ without those chunks: with `portal 'opennds'` the
 * daemon starts and opens a gate, and never tries them; with `portal 'sluice'` (a restart: the option is restart-only)
 * the same copy refuses to start with ERR_MODULE_LOAD naming the own gate, so the chunks taken away are the ones that
 * portal reads. The whole dist/ with `portal 'sluice'` loads them and answers on the gate's socket.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { BUNDLE, DaemonLab, ensureBuilt } from './harness.ts';

const DIST = join(BUNDLE, '..');
const OWN_GATE = /^src\/(gate\/own-(gate|valve)|portal\/own-gate(-nft|-server)?)\.ts$/;

/** The chunk files (sluice-*.mjs) that hold the own gate's code, by the build's meta.json. */
function ownGateChunks(): string[] {
  const meta = JSON.parse(readFileSync(join(DIST, 'meta.json'), 'utf8')) as Record<string, string[]>;
  return Object.entries(meta)
    .filter(([out, inputs]) => /^dist\/sluice-.*\.mjs$/.test(out) && inputs.some((i) => OWN_GATE.test(i)))
    .map(([out]) => out.slice('dist/'.length));
}

/**
 * `portal 'sluice'` in the lab's config (the later option wins, as in uci: the harness's `portal 'opennds'` comes
 * first), its gate's socket in the lab's directory; no kernel quota and an nft that does nothing: what is checked is
 * that the gate's code is read and its socket answers, not the kernel's tables (test/gate, test/e2e/sluice-gate).
 */
function ownGatePortal(lab: DaemonLab): string {
  lab.options.mainExtra = [
    "\toption portal 'sluice'",
    "\toption kernel_quota '0'",
    "\toption nft '/bin/true'",
    `\toption ndsctl_socket '${join(lab.dir, 'gate.sock')}'`,
  ].join('\n');
  lab.writeConfig();
  return join(lab.dir, 'gate.sock');
}

/** A daemon lab on a copy of dist/ without the own gate's chunks. */
async function withoutOwnGate(sluice: boolean, check: (lab: DaemonLab) => Promise<void>): Promise<void> {
  ensureBuilt();
  const copy = mkdtempSync(join(tmpdir(), 'sluice-noowngate-'));
  cpSync(DIST, copy, { recursive: true });
  const chunks = ownGateChunks();
  for (const chunk of chunks) rmSync(join(copy, chunk));
  const lab = await DaemonLab.create({ bundle: join(copy, 'sluice.mjs'), pollInterval: 0.3, portalSocket: !sluice });
  if (sluice) ownGatePortal(lab);
  try {
    await check(lab);
  } finally {
    await lab.close();
    rmSync(copy, { recursive: true, force: true });
  }
}

test("the own gate's code is in chunks of its own, apart from the bundle's entry", () => {
  ensureBuilt();
  const chunks = ownGateChunks();
  assert.ok(chunks.length > 0, 'no chunk holds the own gate');
  const entry = readFileSync(BUNDLE, 'utf8');
  for (const chunk of chunks) assert.not.ok(entry.includes(chunk), `sluice.mjs imports ${chunk}`);
});

test(
  "portal 'opennds', the own gate's chunks missing: the daemon starts and opens a gate, never trying " + 'them',
  async () => {
    await withoutOwnGate(false, async (lab) => {
      lab.portal.addClient('02:00:00:00:3a:c1', '10.0.58.1');
      await lab.startDaemon();
      assert.is((await lab.callStatus('grant', { mac: '02:00:00:00:3a:c1', seconds: 600 })).status, 0);
      await lab.waitFor(() => lab.clientState('02:00:00:00:3a:c1') === 'Authenticated', 30_000, 'gate open');
      assert.not.match(lab.output, /ERR_MODULE_LOAD/);
      assert.is(lab.daemon?.exitCode, null, 'the daemon runs');
    });
  },
);

test(
  "portal 'sluice', the same chunks missing: the start is refused with ERR_MODULE_LOAD naming the own " + 'gate',
  async () => {
    await withoutOwnGate(true, async (lab) => {
      const started = await lab.startDaemon().then(
        () => null,
        (err: Error) => err,
      );
      assert.ok(started, 'the daemon started without its gate');
      assert.match(lab.output, /ERR_MODULE_LOAD/);
      assert.match(lab.output, /sluice's own gate: its code could not be loaded/);
    });
  },
);

test("portal 'sluice' with the whole dist/: the own gate is loaded and answers on its socket", async () => {
  ensureBuilt();
  const lab = await DaemonLab.create({ pollInterval: 0.3 });
  const socket = ownGatePortal(lab);
  try {
    await lab.startDaemon();
    assert.not.match(lab.output, /ERR_MODULE_LOAD/);
    // The gate answers on its socket in ndsctl's protocol (portal/own-gate-server.ts).
    assert.is(await ask(socket, 'status'), 'sluice gate: 0 devices passing\n');
    assert.is(lab.daemon?.exitCode, null, 'the daemon runs');
  } finally {
    await lab.close();
  }
});

/** One request on a control socket in ndsctl's form: the request sent, the answer read until the gate closes. */
function ask(socket: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = createConnection(socket, () => c.write(`${line}\r\n\r\n`));
    let answer = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => (answer += d));
    c.on('end', () => resolve(answer));
    c.on('error', reject);
  });
}

test.run();
