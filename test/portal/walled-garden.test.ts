// tier: fast
/**
 * The walled garden's addresses (portal/walled-garden-addresses.ts): each answer kept for its TTL bounded to
 * [30 s, 1 h], an address a name stops returning dropped once that ran out, a host no longer listed dropped at once;
 * and the keeper (portal/walled-garden.ts) on a lookup that changes its answers, writing only what changed, and, as
 * root, the script it writes taken by the real nft in a network namespace.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { GardenAddresses, MAX_TTL_MS, MIN_TTL_MS } from '../../src/portal/walled-garden-addresses.ts';
import { WalledGarden, type LookupFn } from '../../src/portal/walled-garden.ts';
import { gardenScript } from '../../src/portal/walled-garden-nft.ts';
import { createLogger } from '../../src/log.ts';
import { skipTest } from '../helpers/skip.ts';

test('an answer lives for its TTL, bounded; a host dropped from the list leaves at once', () => {
  const book = new GardenAddresses();
  book.answered('a.example', [{ address: '192.0.2.1', ttl: 5 }], 0);
  book.answered('b.example', [{ address: '2001:db8::1', ttl: 86_400 }], 0);
  assert.equal(book.addresses(), { v4: ['192.0.2.1'], v6: ['2001:db8::1'] });
  assert.is(book.nextLookupAt(0), MIN_TTL_MS);
  book.expire(MIN_TTL_MS - 1);
  assert.equal(book.addresses().v4, ['192.0.2.1'], 'a 5 s TTL is held 30 s');
  book.expire(MIN_TTL_MS);
  assert.equal(book.addresses(), { v4: [], v6: ['2001:db8::1'] });
  book.expire(MAX_TTL_MS);
  assert.equal(book.addresses().v6, [], 'a day-long TTL is held 1 h');
  book.answered('a.example', [{ address: '192.0.2.1', ttl: 300 }], 0);
  book.retain(['b.example']);
  assert.equal(book.addresses().v4, []);
});

test('the keeper: a name whose answer changes moves the set; an unchanged round writes nothing', async () => {
  let answer = '192.0.2.1';
  const lookup: LookupFn = async (_host, family) => (family === 4 ? [{ address: answer, ttl: 60 }] : []);
  const scripts: string[] = [];
  let now = 0;
  const garden = new WalledGarden({
    nft: async (_args, stdin) => {
      scripts.push(stdin);
      return '';
    },
    lookup,
    log: createLogger({ write: () => undefined }),
    now: () => now,
    ownNetworks: () => ({ addresses: [], subnets: [] }),
  });
  const target = { hosts: ['wallet.example'], ports: [443], devices: ['br-lan'] };
  await garden.follow(target);
  assert.is(scripts.length, 1);
  assert.match(scripts[0]!, /v4 \{ 192\.0\.2\.1 \}/);
  await garden.follow(target);
  assert.is(scripts.length, 1, 'unchanged: not written again');
  answer = '192.0.2.2';
  now = 10_000;
  await garden.follow(target);
  assert.match(scripts[1]!, /v4 \{ 192\.0\.2\.1, 192\.0\.2\.2 \}/, 'the old answer is held for its TTL');
  now = 61_000;
  await garden.follow(target);
  assert.match(scripts[2]!, /v4 \{ 192\.0\.2\.2 \}/);
  await garden.follow({ ...target, hosts: [] });
  assert.match(scripts[3]!, /^table inet sluice_garden \{\}\ndelete table inet sluice_garden\n$/);
  await garden.close();
});

test('each host says which addresses it opened, when they change (a mint behind a CDN opens that edge)', async () => {
  let answer = '198.51.100.7';
  const lookup: LookupFn = async (_host, family) => (family === 4 ? [{ address: answer, ttl: 60 }] : []);
  const lines: string[] = [];
  let now = 0;
  const garden = new WalledGarden({
    nft: async () => '',
    lookup,
    log: createLogger({ write: (_level, line) => void lines.push(line) }),
    now: () => now,
    ownNetworks: () => ({ addresses: [], subnets: [] }),
  });
  const target = { hosts: ['mint.example'], ports: [443], devices: ['br-lan'] };
  await garden.follow(target);
  await garden.follow(target);
  answer = '198.51.100.8';
  now = 61_000;
  await garden.follow(target);
  const opened = lines.filter((l) => l.includes('walled garden: host opened'));
  assert.is(opened.length, 2, opened.join('\n'));
  assert.match(opened[0]!, /mint\.example.*198\.51\.100\.7/);
  assert.match(opened[1]!, /mint\.example.*addresses=198\.51\.100\.8/);
  await garden.close();
});

const root = process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v nft']).status === 0;
if (!root) skipTest(test, 'the garden script on the real nft', 'not root or no nft', { ciInstalls: true });
else
  test('the script is taken by the real nft (root, a network namespace)', () => {
    const ns = `sl-garden-${randomBytes(3).toString('hex')}`;
    assert.is(spawnSync('ip', ['netns', 'add', ns]).status, 0);
    try {
      const nft = (stdin: string) => spawnSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: stdin });
      const script = gardenScript({
        ...{ devices: ['br-lan'], ports: [443, 80], v4: ['192.0.2.1'], v6: ['2001:db8::1'] },
        own: { addresses: ['10.0.0.1'], subnets: ['10.0.0.0/24'] },
      });
      const first = nft(script);
      assert.is(first.status, 0, String(first.stderr));
      assert.is(nft(script).status, 0, 'applied again over itself');
      const listed = spawnSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'inet', 'sluice_garden']);
      assert.match(String(listed.stdout), /192\.0\.2\.1/);
      assert.match(String(listed.stdout), /meta mark set meta mark \| 0x00020200/);
    } finally {
      spawnSync('ip', ['netns', 'del', ns]);
    }
  });

test.run();
