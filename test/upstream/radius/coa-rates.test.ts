// tier: fast
// A CoA-Request's rate attributes → the change it asks for (src/upstream/radius/coa-rates.ts), and the port that hands
// it to ubus `change` (the one rate-change path): no sockets, no sessions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { coaRates, ubusChangeRates } from '../../../src/upstream/radius/coa-rates.ts';
import { AttributeReader, encodeRequest, type AttributeInput } from '../../../src/radius/index.ts';
import { decodePacket } from '../../../src/radius/packet.ts';
import type { Session } from '../../../src/sessions/index.ts';

const reader = (attributes: AttributeInput[]): AttributeReader =>
  new AttributeReader(
    decodePacket(
      encodeRequest({
        code: 'CoA-Request',
        identifier: 1,
        attributes: [['Acct-Session-Id', 'abc'], ...attributes],
        secret: 's',
      }),
    ).attributes,
  );
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

test('WISPr-Bandwidth-Max-Down/-Up are bits per second; one alone leaves the other direction as it is', () => {
  assert.equal(
    coaRates(
      reader([
        ['WISPr-Bandwidth-Max-Down', 4_000_000],
        ['WISPr-Bandwidth-Max-Up', 1_000_000],
      ]),
    ),
    { ok: true, change: { downBps: 4_000_000, upBps: 1_000_000 } },
  );
  assert.equal(coaRates(reader([['WISPr-Bandwidth-Max-Down', 8_000_000]])), {
    ok: true,
    change: { downBps: 8_000_000 },
  });
  assert.equal(coaRates(reader([['WISPr-Bandwidth-Max-Up', 512_000]])), { ok: true, change: { upBps: 512_000 } });
  assert.equal(
    coaRates(reader([['Session-Timeout', 60]])),
    { ok: true, change: {} },
    'no rate attribute: no rate change',
  );
});

test(
  "Mikrotik-Rate-Limit is rx/tx from the router's side (rx: the client's upload); with WISPr the smaller per " +
    'direction',
  () => {
    assert.equal(coaRates(reader([['Mikrotik-Rate-Limit', '1M/4M']])), {
      ok: true,
      change: { upBps: 1_000_000, downBps: 4_000_000 },
    });
    assert.equal(
      coaRates(reader([['Mikrotik-Rate-Limit', '2M/8M 4M/16M']])),
      { ok: true, change: { upBps: 2_000_000, downBps: 8_000_000 } },
      'bursts ignored',
    );
    assert.equal(
      coaRates(
        reader([
          ['Mikrotik-Rate-Limit', '1M/4M'],
          ['WISPr-Bandwidth-Max-Down', 2_000_000],
          ['WISPr-Bandwidth-Max-Up', 3_000_000],
        ]),
      ),
      { ok: true, change: { upBps: 1_000_000, downBps: 2_000_000 } },
    );
    // A tx left out is rx's value (MikroTik: "If tx-rate is not specified, rx-rate is as tx-rate too").
    assert.equal(coaRates(reader([['Mikrotik-Rate-Limit', '2M']])), {
      ok: true,
      change: { upBps: 2_000_000, downBps: 2_000_000 },
    });
    assert.equal(
      coaRates(reader([['Mikrotik-Rate-Limit', '/4M']])),
      { ok: true, change: { downBps: 4_000_000 } },
      'no rx: the download alone',
    );
  },
);

test(
  'a zero is "no limit": it lifts that direction\'s tier (null), it is not "no value"; against a rate the rate ' +
    'wins',
  () => {
    // MikroTik documents 0 as no limit; CoovaChilli shapes a direction only when its WISPr value is not 0.
    assert.equal(coaRates(reader([['Mikrotik-Rate-Limit', '0/4M']])), {
      ok: true,
      change: { upBps: null, downBps: 4_000_000 },
    });
    assert.equal(coaRates(reader([['Mikrotik-Rate-Limit', '0/0']])), {
      ok: true,
      change: { upBps: null, downBps: null },
    });
    assert.equal(
      coaRates(reader([['Mikrotik-Rate-Limit', '0']])),
      { ok: true, change: { upBps: null, downBps: null } },
      'tx is rx: both lifted',
    );
    assert.equal(
      coaRates(reader([['Mikrotik-Rate-Limit', '0k/0M 0/0 0/0 0/0 8']])),
      { ok: true, change: { upBps: null, downBps: null } },
      'any unit, bursts ignored',
    );
    assert.equal(coaRates(reader([['WISPr-Bandwidth-Max-Down', 0]])), { ok: true, change: { downBps: null } });
    assert.equal(
      coaRates(
        reader([
          ['WISPr-Bandwidth-Max-Down', 0],
          ['WISPr-Bandwidth-Max-Up', 0],
        ]),
      ),
      { ok: true, change: { downBps: null, upBps: null } },
    );
    // Both attributes: a rate is tighter than no limit, whichever says which.
    assert.equal(
      coaRates(
        reader([
          ['Mikrotik-Rate-Limit', '0/0'],
          ['WISPr-Bandwidth-Max-Down', 2_000_000],
        ]),
      ),
      { ok: true, change: { downBps: 2_000_000, upBps: null } },
    );
    assert.equal(
      coaRates(
        reader([
          ['Mikrotik-Rate-Limit', '1M/4M'],
          ['WISPr-Bandwidth-Max-Down', 0],
          ['WISPr-Bandwidth-Max-Up', 0],
        ]),
      ),
      { ok: true, change: { downBps: 4_000_000, upBps: 1_000_000 } },
    );
  },
);

test(
  'a rate the voucher reader would leave out refuses the CoA (Invalid-Request): out of range, unreadable, a ' +
    'wrong size',
  () => {
    for (const attrs of [
      [['WISPr-Bandwidth-Max-Down', 100]],
      [['WISPr-Bandwidth-Max-Down', 1]],
      [['Mikrotik-Rate-Limit', '/']],
      [['Mikrotik-Rate-Limit', '0.5/1M']],
      [['WISPr-Bandwidth-Max-Down', Buffer.from([1, 2])]],
      [['Mikrotik-Rate-Limit', 'fast']],
      [['Mikrotik-Rate-Limit', '1M/2M/3M']],
      [['Mikrotik-Rate-Limit', '1MiB/4M']],
      [['Mikrotik-Rate-Limit', '99G/1M']],
      // One good direction does not carry a bad one.
      [
        ['WISPr-Bandwidth-Max-Down', 4_000_000],
        ['WISPr-Bandwidth-Max-Up', 1],
      ],
    ] as AttributeInput[][]) {
      const r = coaRates(reader(attrs));
      assert.is(r.ok, false, JSON.stringify(attrs));
      if (!r.ok) assert.ok(r.reason.length > 0);
    }
    assert.is(
      coaRates(reader([['WISPr-Bandwidth-Max-Down', u32(8_000)]])).ok,
      true,
      'the lowest rate sluice enforces is fine',
    );
  },
);

test(
  'ubusChangeRates: ubus `change` by session id, each set direction as the text it reads back to the same bit/s, ' +
    'a lifted one as none',
  async () => {
    const calls: Array<[string, Record<string, unknown>]> = [];
    const stats = { enabled: false as boolean, failures: 0 };
    const port = ubusChangeRates({ stats: () => stats }, async (name, args) => {
      calls.push([name, args]);
      return {};
    });
    const s = { id: 'sess-1', mac: '02:00:00:00:0a:01' } as Session;
    await port.change(s, { downBps: 4_000_000, upBps: 1_500_000 });
    await port.change(s, { upBps: 12_345 });
    await port.change(s, { downBps: null, upBps: null });
    assert.equal(
      calls,
      [
        ['change', { id: 'sess-1', rate_down: '4mbit', rate_up: '1500kbit' }],
        ['change', { id: 'sess-1', rate_up: '12345bit' }],
        ['change', { id: 'sess-1', rate_down: 'none', rate_up: 'none' }],
      ],
      "no limit is ubus change's `none`",
    );
    // Usable before the shaper's first client (it starts then), and while on; not once it started and failed.
    assert.is(port.usable(), true);
    stats.enabled = true;
    assert.is(port.usable(), true);
    Object.assign(stats, { enabled: false, failures: 1 });
    assert.is(port.usable(), false);
  },
);

test.run();
