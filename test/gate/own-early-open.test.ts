// tier: daemon
/**
 * Under `portal 'sluice'` a purchase's gate opens while its record is written, not after: the real nft in a network
 * namespace, the real SessionManager over the real JournalStore, the gate as the daemon builds it (openPortal's
 * parts). The purchase is answered only once its record is on flash, with the gate open; a write the filesystem
 * refuses (ENOSPC on a full tmpfs) fails the purchases of that write and closes their gates again, and nobody hears of
 * the sale.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Portal } from '../../src/gate/portal.ts';
import { Gatekeeper } from '../../src/gate/gatekeeper.ts';
import { silentLogger } from '../../src/log.ts';
import { JournalStore } from '../../src/sessions/journal.ts';
import { SessionManager, type Grant, type Session } from '../../src/sessions/index.ts';
import { toSluiceError } from '../../src/errors.ts';
import { CountingStore } from '../sessions/helpers.ts';
import { lacking, skipTest } from '../helpers/skip.ts';
import { startOwnGate, type OwnGate } from './own-gate-rig.ts';
import { until } from '../helpers/until.ts';

const A = '02:00:00:00:0f:01';
/** A burst bought together, their records one write: more than a page of the journal's tmpfs, so that write needs
 *  a page the full filesystem no longer has. */
const BURST = Array.from({ length: 16 }, (_, i) => `02:00:00:00:0f:${(i + 16).toString(16)}`);
const ARP = [
  'IP address       HW type     Flags       HW address            Mask     Device',
  ...[A, ...BURST].map((mac, i) => `10.77.0.${101 + i}      0x1         0x2         ${mac}     *        lan`),
].join('\n');

const grant = (mac: string, reference: string): Grant => ({
  mac,
  metric: 'bytes',
  allotment: 1048576n,
  payment: { method: 'test', reference, amount: 1n, asset: 'USDC', at: Date.now() },
});

const lacks = lacking(['root', 'nft', 'ip', 'mount']);
if (lacks) {
  skipTest(test, "portal 'sluice': a purchase's gate opens while its record is written", lacks, { ciInstalls: true });
} else {
  const id = randomBytes(3).toString('hex');
  const R = `oe-${id}-r`;
  const dir = mkdtempSync(join(tmpdir(), 'own-early-'));
  /** The journal's filesystem: a small tmpfs, filled to make its write fail. */
  const disk = join(dir, 'disk');
  const inR = (...args: string[]): string => execFileSync('ip', ['netns', 'exec', R, ...args], { encoding: 'utf8' });
  const paid = (): string => inR('nft', 'list', 'set', 'inet', 'sluice_portal', 'paid');
  let portal: Portal;
  let gate: OwnGate | undefined;
  let store: CountingStore;
  let sessions: SessionManager;
  let gates: Gatekeeper;
  const heard: string[] = [];

  test.before(async () => {
    execFileSync('ip', ['netns', 'add', R]);
    execFileSync('ip', ['-n', R, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'lan1']);
    for (const dev of ['lan', 'lan1']) execFileSync('ip', ['-n', R, 'link', 'set', dev, 'up']);
    mkdirSync(disk);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', disk]);
    gate = await startOwnGate(dir, R, ARP);
    portal = gate.portal;
    store = new CountingStore(new JournalStore({ dir: disk }));
    sessions = new SessionManager({ store, checkpointIntervalMs: 300_000 });
    await sessions.recover();
    for (const event of ['selling', 'unsold', 'started'] as const)
      sessions.on(event, (s: Session) => heard.push(`${event} ${s.mac}`));
    gates = new Gatekeeper({ ...portal.gateParts, sessions, log: silentLogger });
  });
  test.after(async () => {
    await sessions?.close().catch(() => undefined);
    await gate?.close();
    spawnSync('umount', ['-l', disk]);
    spawnSync('ip', ['netns', 'del', R]);
    rmSync(dir, { recursive: true, force: true });
  });

  test("the gate opens while the purchase's record is written; the answer waits for the record", async () => {
    store.hold = true;
    let answered = false;
    const purchase = sessions.activate(grant(A, 'a-1')).then((r) => {
      answered = true;
      return r;
    });
    await until(() => paid().includes(A), 30_000, 'the gate open while the record is held', 50);
    assert.not.ok(answered, 'not answered before the record is on flash');
    assert.equal(heard, [`selling ${A}`], 'nobody told of the sale yet');
    store.release();
    const { session } = await purchase;
    assert.is(await gates.opened(session), 'opened');
    assert.match(paid(), A);
    assert.equal(heard, [`selling ${A}`, `started ${A}`]);
  });

  test('a write the filesystem refuses fails the purchases and closes the gates they opened', async () => {
    heard.length = 0;
    store.hold = true;
    const purchases = BURST.map((mac, i) =>
      sessions.activate(grant(mac, `burst-${i}`)).then(
        () => null,
        (err: unknown) => toSluiceError(err).code,
      ),
    );
    await until(
      () => BURST.every((mac) => paid().includes(mac)),
      30_000,
      'the gates open while their records are held',
      50,
    );
    // The journal's filesystem full: the records' write gets ENOSPC.
    const fill = openSync(join(disk, 'fill'), 'w');
    try {
      for (;;) writeSync(fill, Buffer.alloc(4096, 0x55));
    } catch {
      // ENOSPC: full.
    } finally {
      closeSync(fill);
    }
    const closes = BURST.map(
      (m) => new Promise<void>((resolve) => gates.on('closed', (mac) => mac === m && resolve())),
    );
    store.release();
    assert.equal(
      await Promise.all(purchases),
      BURST.map(() => 'ERR_JOURNAL_WRITE'),
      'every purchase refused',
    );
    await Promise.all(closes);
    const now = paid();
    for (const mac of BURST) assert.not.match(now, mac, `the gate of ${mac} closed again`);
    assert.match(now, A, "another's gate stays open");
    assert.equal(
      heard,
      [...BURST.map((mac) => `selling ${mac}`), ...BURST.map((mac) => `unsold ${mac}`)],
      'nobody heard of a start',
    );
    for (const mac of BURST) assert.is(sessions.byMac(mac), null, `no session for ${mac}`);
  });
}

test.run();
