// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseMikrotikRateLimit, ratesFromAccept } from '../../src/payments/voucher/voucher-rates.ts';
import { AttributeReader } from '../../src/radius/packet.ts';
import { attributeByName } from '../../src/radius/dictionary.ts';

/** An AttributeReader over raw values by name (the reader looks attributes up by name). */
function reader(values: Record<string, Buffer>): AttributeReader {
  const attributes = Object.entries(values).map(([name, value]) => ({ ...attributeByName(name)!, value }));
  return new AttributeReader(attributes as never);
}
const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };

test('Mikrotik-Rate-Limit: rx is the upload, tx the download; bursts after the first field ignored', () => {
  assert.equal(parseMikrotikRateLimit('2M/8M'), { upBps: 2_000_000, downBps: 8_000_000 });
  assert.equal(parseMikrotikRateLimit('512k/2M 1M/4M 256k/1M 8/8'), { upBps: 512_000, downBps: 2_000_000 });
  assert.equal(parseMikrotikRateLimit('1M'), { upBps: 1_000_000, downBps: null }, 'rx only');
  assert.equal(parseMikrotikRateLimit('0/4M'), { upBps: null, downBps: 4_000_000 }, '0 is no limit');
  assert.equal(parseMikrotikRateLimit('-1M/2M'), { upBps: null, downBps: 2_000_000 }, 'each direction on its own');
});

test('Mikrotik-Rate-Limit garbage: ignored with a problem, never thrown', () => {
  for (const bad of ['', 'fast', '1M/2M/3M', '-1M/-2M', '1MiB/2MiB', 'x'.repeat(5000), '\u0000/\u0000']) {
    const problems: string[] = [];
    const r = parseMikrotikRateLimit(bad, problems);
    assert.ok(r.upBps === null && r.downBps === null, bad);
    assert.ok(problems.length > 0, `a problem for ${JSON.stringify(bad.slice(0, 20))}`);
  }
});

test('ratesFromAccept: WISPr alone; with MikroTik the smaller per direction; bad sizes and values ignored', () => {
  assert.equal(ratesFromAccept(reader({ 'WISPr-Bandwidth-Max-Down': u32(2_000_000) })), { rates: { downBps: 2_000_000, upBps: null }, problems: [] });
  const both = ratesFromAccept(reader({ 'WISPr-Bandwidth-Max-Down': u32(8_000_000), 'WISPr-Bandwidth-Max-Up': u32(1_000_000), 'Mikrotik-Rate-Limit': Buffer.from('2M/4M') }));
  assert.equal(both.rates, { downBps: 4_000_000, upBps: 1_000_000 });
  const bad = ratesFromAccept(reader({ 'WISPr-Bandwidth-Max-Down': Buffer.from([1, 2]), 'WISPr-Bandwidth-Max-Up': u32(0) }));
  assert.is(bad.rates, null);
  assert.is(bad.problems.length, 2);
  assert.equal(ratesFromAccept(reader({})), { rates: null, problems: [] });
});

test.run();
