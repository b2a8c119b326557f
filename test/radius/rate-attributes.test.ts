// tier: fast
/**
 * THE reading of a RADIUS speed tier (src/radius/rate-attributes.ts), which a voucher's Access-Accept and a CoA both
 * use: Mikrotik-Rate-Limit as MikroTik documents it (rx-rate[/tx-rate] from the router's side, rx the client's upload;
 * tx left out is rx; 0 no limit) and WISPr-Bandwidth-Max-Down/-Up (0 no limit), the tighter per direction.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseMikrotikRateLimit, readRateAttributes } from '../../src/radius/rate-attributes.ts';
import { AttributeReader } from '../../src/radius/packet.ts';
import { attributeByName } from '../../src/radius/dictionary.ts';

const BOUNDS = { min: 8_000, max: 10_000_000_000 };
const mk = (text: string) => {
  const problems: string[] = [];
  const r = parseMikrotikRateLimit(text, BOUNDS, problems);
  return { up: r.upBps, down: r.downBps, problems };
};

function reader(values: Record<string, Buffer>): AttributeReader {
  const attributes = Object.entries(values).map(([name, value]) => ({ ...attributeByName(name)!, value }));
  return new AttributeReader(attributes as never);
}
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

test('Mikrotik-Rate-Limit: rx is the upload, tx the download; bursts after the first field ignored', () => {
  assert.equal(mk('2M/8M'), { up: 2_000_000, down: 8_000_000, problems: [] });
  assert.equal(mk('512k/2M 1M/4M 256k/1M 8/8'), { up: 512_000, down: 2_000_000, problems: [] });
  assert.equal(mk('64k/128M'), { up: 64_000, down: 128_000_000, problems: [] }, "MikroTik's own example");
  assert.equal(mk('1.5M/1G'), { up: 1_500_000, down: 1_000_000_000, problems: [] });
});

test(
  'Mikrotik-Rate-Limit: tx left out is rx (MikroTik: "If ' + 'tx-rate is not specified, rx-rate is as tx-rate too")',
  () => {
    assert.equal(mk('2M'), { up: 2_000_000, down: 2_000_000, problems: [] });
    assert.equal(
      mk('128k 256k'),
      { up: 128_000, down: 128_000, problems: [] },
      "MikroTik's example: 128k is rx and tx",
    );
    assert.equal(mk('2M/'), { up: 2_000_000, down: 2_000_000, problems: [] });
    assert.equal(mk('/4M'), { up: undefined, down: 4_000_000, problems: [] }, 'no rx: the download alone');
  },
);

test('Mikrotik-Rate-Limit: a zero, in any unit, is no limit (null), not absent', () => {
  assert.equal(mk('0'), { up: null, down: null, problems: [] }, 'both lifted');
  assert.equal(mk('0/4M'), { up: null, down: 4_000_000, problems: [] });
  assert.equal(mk('0k/0M 0/0 0/0 0/0 8'), { up: null, down: null, problems: [] });
  assert.equal(mk('0.4/1M').up, undefined, '0.4 bit/s is not a zero that rounds to no limit');
});

test('Mikrotik-Rate-Limit: unusable text is a problem, that direction absent, the other kept; never thrown', () => {
  const bad = mk('-1M/2M');
  assert.equal([bad.up, bad.down], [undefined, 2_000_000]);
  assert.is(bad.problems.length, 1);
  const fast = mk('fast please');
  assert.equal(
    [fast.up, fast.down, fast.problems.length],
    [undefined, undefined, 1],
    'one problem for rx copied to tx',
  );
  for (const text of [
    '',
    '/',
    'fast',
    '1M/2M/3M',
    '-1M/-2M',
    '1MiB/2MiB',
    '99G/1M',
    '0.5/1M',
    '100/1M',
    'x'.repeat(5000),
    '\u0000/\u0000',
  ]) {
    const r = mk(text);
    assert.ok(r.problems.length > 0, `a problem for ${JSON.stringify(text.slice(0, 20))}`);
    assert.ok(
      r.problems.every((p) => p.length < 300),
      'the text is cut in the problem',
    );
  }
});

test(
  'readRateAttributes: WISPr 0 is no limit; with both ' + 'attributes the tighter per direction, a rate over no limit',
  () => {
    assert.equal(readRateAttributes(reader({}), BOUNDS), { downBps: undefined, upBps: undefined, problems: [] });
    assert.equal(readRateAttributes(reader({ 'WISPr-Bandwidth-Max-Down': u32(0) }), BOUNDS), {
      downBps: null,
      upBps: undefined,
      problems: [],
    });
    assert.equal(
      readRateAttributes(
        reader({
          'WISPr-Bandwidth-Max-Down': u32(8_000_000),
          'WISPr-Bandwidth-Max-Up': u32(1_000_000),
          'Mikrotik-Rate-Limit': Buffer.from('2M/4M'),
        }),
        BOUNDS,
      ),
      { downBps: 4_000_000, upBps: 1_000_000, problems: [] },
    );
    assert.equal(
      readRateAttributes(
        reader({ 'WISPr-Bandwidth-Max-Down': u32(2_000_000), 'Mikrotik-Rate-Limit': Buffer.from('0') }),
        BOUNDS,
      ),
      { downBps: 2_000_000, upBps: null, problems: [] },
    );
    assert.equal(
      readRateAttributes(
        reader({ 'WISPr-Bandwidth-Max-Up': u32(0), 'Mikrotik-Rate-Limit': Buffer.from('2M') }),
        BOUNDS,
      ),
      { downBps: 2_000_000, upBps: 2_000_000, problems: [] },
    );
    const bad = readRateAttributes(
      reader({ 'WISPr-Bandwidth-Max-Down': Buffer.from([1, 2]), 'WISPr-Bandwidth-Max-Up': u32(100) }),
      BOUNDS,
    );
    assert.equal([bad.downBps, bad.upBps, bad.problems.length], [undefined, undefined, 2]);
  },
);

test.run();
