// tier: fast
/**
 * A MAC the portal lists twice: openNDS keeps one client per MAC and address, so a device that took a new lease under
 * the same MAC is listed again, Preauthenticated behind the splash on its new address, while its old address stays
 * Authenticated (real captures from openNDS 9.10 and 10.3.1 in the e2e lab: `lab.sh lease`). Every reader of a
 * listing reads such a MAC as its last listing (the address it moved to: its gate is that one's, re-opened by that
 * listing's token), and none refuses the listing: a refused listing left every client unlisted (the main thread's
 * reconcile at start failed, the kernel path never saw the move, the polled meter skipped every tick while the old
 * address was listed).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSnapshot } from '../../src/portal/parse.ts';
import { uniqueClientKeys } from '../../src/portal/client-list.ts';
import { STATE_CODES } from '../../src/portal/formats.ts';
import { scanRoster } from '../../src/meter/kernel-task.ts';
import { runUsageTask } from '../../src/meter/task.ts';
import { EpochAccountant } from '../../src/meter/epochs.ts';
import { createTable } from '../../src/meter/table.ts';
import { ndsctlFixture } from './fixtures.ts';

const MAC = '02:00:00:00:0c:01';
const CAPTURES = ['opennds-9.10-all-mac-twice-new-lease.json', 'opennds-10.3.1-all-mac-twice-new-lease.json'];

/** The capture's second listing of MAC: its new address's token. */
const newToken = (text: string): string => [...text.matchAll(/"token":"([0-9a-f]+)"/g)][1]![1]!;

test('the main thread: the MAC is its last listing (new address, Preauthenticated, its token)', () => {
  for (const name of CAPTURES) {
    const text = ndsctlFixture(name);
    const snap = parseSnapshot(text);
    assert.is(snap.declaredCount, 2, name);
    assert.is(snap.clients.length, 1, name);
    const c = snap.clients[0]!;
    assert.equal([c.mac, c.ip, c.state, c.token], [MAC, '10.77.0.201', 'Preauthenticated', newToken(text)], name);
  }
});

test('the kernel meter: the roster, addresses and tokens hold the last listing', () => {
  for (const name of CAPTURES) {
    const text = ndsctlFixture(name);
    const r = scanRoster(Buffer.from(text), 'opennds');
    assert.ok(r.ok, name);
    if (!r.ok) continue;
    assert.equal(r.roster, [[MAC, STATE_CODES.Preauthenticated]], name);
    assert.equal(r.addresses, [MAC, '10.77.0.201'], name);
    assert.equal(r.tokens, [MAC, newToken(text)], name);
  }
});

test('the polled meter: the listing is read (the tick goes on), for the scanner and for JSON.parse', async () => {
  for (const name of CAPTURES) {
    for (const text of [ndsctlFixture(name), ndsctlFixture(name).replace('"custom":"none"', '"custom":"a\\/b"')]) {
      const r = await runUsageTask(
        { tick: 1, table: createTable(16), source: { kind: 'inline', text }, flavour: 'opennds', timeoutMs: 5000 },
        new EpochAccountant(),
      );
      assert.ok(r.ok, `${name}: ${JSON.stringify(r)}`);
    }
  }
});

test('repeated keys are renamed at the clients level only, strings with braces and quotes read as strings', () => {
  const text =
    '{"client_list_length":"3","clients":{"a":{"custom":"}{\\"a\\":","x":{"a":1}},' +
    '"a":{"custom":"a"},"a":{}},"a":{"clients":{"b":1,"b":2}}}';
  const out = JSON.parse(uniqueClientKeys(text)) as { clients: Record<string, unknown>; a: unknown };
  assert.equal(Object.keys(out.clients), ['a', 'a#2', 'a#3']);
  assert.equal((out.clients['a'] as { x: unknown }).x, { a: 1 });
  assert.equal(out.a, { clients: { b: 2 } });
});

test.run();
