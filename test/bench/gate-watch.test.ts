// tier: daemon; needs root nft ip python3
/**
 * bench/lib/gate-watch.ts, the portal-cpu bench's kernel-side reading of when sluice's own gate opened: against the
 * real kernel in a network namespace, an element added to the own gate's `paid_mac` set is seen for its MAC at or after
 * the moment asked about, one added before that moment is not, and a line of any other set names no MAC.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { GateWatch, paidMacsOf } from '../../bench/lib/gate-watch.ts';
import { OWN_GATE_TABLE } from '../../src/portal/own-gate-nft.ts';
import { until } from '../helpers/until.ts';

const ns = `gw-${randomBytes(3).toString('hex')}`;
const nft = (...args: string[]): string =>
  execFileSync('ip', ['netns', 'exec', ns, 'nft', ...args], { encoding: 'utf8' });
/** When `mac`'s element was seen after `since`, once the watch has seen it (a hang guard of 5 s). */
const openedAfter = async (watch: GateWatch, mac: string, since: number): Promise<number> => {
  await until(() => watch.openedAfter(mac, since) !== undefined, 5000, `${mac}'s element after ${since}`);
  return watch.openedAfter(mac, since)!;
};

test.before(() => {
  execFileSync('ip', ['netns', 'add', ns]);
  nft('add', 'table', 'inet', OWN_GATE_TABLE);
  nft('add', 'set', 'inet', OWN_GATE_TABLE, 'paid_mac', '{ type ether_addr; }');
  nft('add', 'set', 'inet', OWN_GATE_TABLE, 'other', '{ type ether_addr; }');
});
test.after(() => {
  execFileSync('ip', ['netns', 'del', ns]);
});

test("a paid_mac line names its MACs, lower-case; another set's line names none", () => {
  assert.equal(paidMacsOf(`add element inet ${OWN_GATE_TABLE} paid_mac { 02:AA:00:00:00:01 }`), ['02:aa:00:00:00:01']);
  assert.equal(paidMacsOf(`add element inet ${OWN_GATE_TABLE} other { 02:aa:00:00:00:01 }`), []);
  assert.equal(paidMacsOf(`delete element inet ${OWN_GATE_TABLE} paid_mac { 02:aa:00:00:00:01 }`), []);
});

test('the kernel tells when each MAC was added to paid_mac, after the moment asked about', async () => {
  const watch = await GateWatch.start(ns);
  try {
    nft('add', 'element', 'inet', OWN_GATE_TABLE, 'paid_mac', '{ 02:00:00:00:00:01 }');
    const first = await openedAfter(watch, '02:00:00:00:00:01', 0);
    const since = performance.now();
    assert.ok(first < since);
    assert.is(watch.openedAfter('02:00:00:00:00:01', since), undefined, 'an add before the moment is not after it');
    nft('add', 'element', 'inet', OWN_GATE_TABLE, 'other', '{ 02:00:00:00:00:02 }');
    nft('delete', 'element', 'inet', OWN_GATE_TABLE, 'paid_mac', '{ 02:00:00:00:00:01 }');
    nft('add', 'element', 'inet', OWN_GATE_TABLE, 'paid_mac', '{ 02:00:00:00:00:01, 02:00:00:00:00:03 }');
    const again = await openedAfter(watch, '02:00:00:00:00:01', since);
    assert.ok(again >= since);
    assert.ok(watch.openedAfter('02:00:00:00:00:03', since) !== undefined, 'both elements of one command');
    assert.is(watch.openedAfter('02:00:00:00:00:02', 0), undefined, 'another set is not the gate');
  } finally {
    watch.stop();
  }
});

test.run();
