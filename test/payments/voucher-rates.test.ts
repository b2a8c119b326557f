// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ratesFromAccept } from '../../src/payments/voucher/voucher-rates.ts';
import { AttributeReader } from '../../src/radius/packet.ts';
import { attributeByName } from '../../src/radius/dictionary.ts';

/** An AttributeReader over raw values by name (the reader looks attributes up by name). */
function reader(values: Record<string, Buffer>): AttributeReader {
  const attributes = Object.entries(values).map(([name, value]) => ({ ...attributeByName(name)!, value }));
  return new AttributeReader(attributes as never);
}
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

test(
  'ratesFromAccept: WISPr alone; with MikroTik the smaller per direction; zeros no limit; bad sizes and values ' +
    'ignored',
  () => {
    assert.equal(ratesFromAccept(reader({ 'WISPr-Bandwidth-Max-Down': u32(2_000_000) })), {
      rates: { downBps: 2_000_000, upBps: null },
      problems: [],
    });
    const both = ratesFromAccept(
      reader({
        'WISPr-Bandwidth-Max-Down': u32(8_000_000),
        'WISPr-Bandwidth-Max-Up': u32(1_000_000),
        'Mikrotik-Rate-Limit': Buffer.from('2M/4M'),
      }),
    );
    assert.equal(both.rates, { downBps: 4_000_000, upBps: 1_000_000 });
    const bad = ratesFromAccept(
      reader({ 'WISPr-Bandwidth-Max-Down': Buffer.from([1, 2]), 'WISPr-Bandwidth-Max-Up': u32(100) }),
    );
    assert.is(bad.rates, null);
    assert.is(bad.problems.length, 2);
    // The Mikrotik-Rate-Limit rule is src/radius/rate-attributes.ts's (test/radius/): tx left out is rx, 0 no limit.
    assert.equal(ratesFromAccept(reader({ 'Mikrotik-Rate-Limit': Buffer.from('2M') })), {
      rates: { downBps: 2_000_000, upBps: 2_000_000 },
      problems: [],
    });
    assert.equal(
      ratesFromAccept(reader({ 'Mikrotik-Rate-Limit': Buffer.from('0') })),
      { rates: null, problems: [] },
      'no limit: not limited',
    );
    assert.equal(
      ratesFromAccept(reader({ 'WISPr-Bandwidth-Max-Down': u32(0), 'WISPr-Bandwidth-Max-Up': u32(0) })),
      { rates: null, problems: [] },
      'WISPr 0: no limit, no problem',
    );
    const half = ratesFromAccept(reader({ 'Mikrotik-Rate-Limit': Buffer.from('-1M/2M') }));
    assert.equal(
      [half.rates, half.problems.length],
      [{ downBps: 2_000_000, upBps: null }, 1],
      'each direction on its own',
    );
    assert.equal(ratesFromAccept(reader({})), { rates: null, problems: [] });
  },
);

test.run();
