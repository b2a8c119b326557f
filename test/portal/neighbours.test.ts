// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { neighbourIp, neighbourMac, neighbourMacReader, neighbourReader } from '../../src/portal/neighbours.ts';

const A = '02:00:00:00:0c:01';
const HEADER = 'IP address       HW type     Flags       HW address            Mask     Device';
const table = (...rows: string[]): string => [HEADER, ...rows, ''].join('\n');

test('one complete entry for the MAC: its address', () => {
  const t = table(
    '10.0.0.9         0x1         0x2         02:00:00:00:0c:02     *        br-lan',
    '10.0.0.2         0x1         0x2         02:00:00:00:0C:01     *        br-lan',
  );
  assert.is(neighbourIp(t, A), '10.0.0.2');
  assert.is(neighbourIp(t, '02:00:00:00:0c:03'), null, 'not there');
});

test('incomplete or failed entries do not count', () => {
  const t = table(
    '10.0.0.2         0x1         0x0         00:00:00:00:00:00     *        br-lan',
    '10.0.0.3         0x1         0x0         02:00:00:00:0c:01     *        br-lan',
  );
  assert.is(neighbourIp(t, A), null);
});

test('several addresses (a client that changed address): only the one the caller has, else none', () => {
  const t = table(
    '10.0.0.2         0x1         0x2         02:00:00:00:0c:01     *        br-lan',
    '10.0.0.7         0x1         0x2         02:00:00:00:0c:01     *        br-lan',
  );
  assert.is(neighbourIp(t, A), null);
  assert.is(neighbourIp(t, A, '10.0.0.7'), '10.0.0.7');
  assert.is(neighbourIp(t, A, '10.0.0.8'), null);
  const one = table('10.0.0.2         0x1         0x2         02:00:00:00:0c:01     *        br-lan');
  assert.is(neighbourIp(one, A, '10.0.0.8'), null, 'the caller and the table disagree: the portal settles it');
});

test('the reader: the file read at each call; none readable → null', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-arp-'));
  try {
    const path = join(dir, 'arp');
    const read = neighbourReader(path);
    assert.is(await read(A, null), null);
    writeFileSync(path, table('10.0.0.2         0x1         0x2         02:00:00:00:0c:01     *        br-lan'));
    assert.is(await read(A, null), '10.0.0.2');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an address's MAC: its one complete entry on the gated device", () => {
  const t = table(
    '10.0.0.2         0x1         0x2         02:00:00:00:0C:01     *        br-lan',
    '10.0.0.3         0x1         0x0         02:00:00:00:0c:03     *        br-lan',
    '10.0.0.4         0x1         0x2         02:00:00:00:0c:04     *        br-guest',
    '10.0.0.5         0x1         0x2         02:00:00:00:0c:05     *        br-lan',
    '10.0.0.5         0x1         0x2         02:00:00:00:0c:06     *        br-guest',
  );
  assert.is(neighbourMac(t, '10.0.0.2', ['br-lan']), A, 'canonical form');
  assert.is(neighbourMac(t, '10.0.0.3', ['br-lan']), null, 'incomplete: the kernel has not resolved it');
  assert.is(neighbourMac(t, '10.0.0.4', ['br-lan']), null, 'on another network of the router: no client of the portal');
  assert.is(neighbourMac(t, '10.0.0.4', null), '02:00:00:00:0c:04', 'no device given: any');
  assert.is(neighbourMac(t, '10.0.0.5', ['br-lan']), '02:00:00:00:0c:05', 'the gated device entry alone');
  assert.is(neighbourMac(t, '10.0.0.5', null), null, 'two MACs for one address: none');
  assert.is(neighbourMac(t, '10.0.0.9', ['br-lan']), null, 'not there');
  assert.is(neighbourMac(t, 'fd00::2', ['br-lan']), null, 'IPv6 is not in this table');
});

test("the address's MAC reader: the file read at each call; none readable → null", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-arp-'));
  try {
    const path = join(dir, 'arp');
    const read = neighbourMacReader(['br-lan'], path);
    assert.is(await read('10.0.0.2'), null);
    writeFileSync(path, table('10.0.0.2         0x1         0x2         02:00:00:00:0c:01     *        br-lan'));
    assert.is(await read('10.0.0.2'), A);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
