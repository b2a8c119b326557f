// tier: peers; needs freeradius
/**
 * Printed vouchers beside RADIUS ones (docs/vouchers.md "local first, then RADIUS"), real FreeRADIUS and the real
 * daemon: through the one `voucher` door a printed code is sold from the local book and never reaches the RADIUS
 * server; a RADIUS voucher still sells; a code neither knows is refused by RADIUS and counts as a wrong guess; with
 * the book damaged, RADIUS's vouchers sell under the same wrong-code limit.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FreeRadius } from '../peers/freeradius.ts';
import { DaemonLab } from '../daemon/harness.ts';
import { radiusSection } from '../helpers/uci-sections.ts';

/** What the RADIUS voucher method counted (ubus stats → upstream's RADIUS sink → voucher). */
async function radiusVouchers(lab: DaemonLab): Promise<{ accepted: number; rejected: number }> {
  const text = JSON.stringify(await lab.call('stats'));
  const m = /"voucher":\{"accepted":(\d+),"rejected":(\d+)/.exec(text);
  if (!m) throw new Error(`no RADIUS voucher figures in stats: ${text.slice(0, 400)}`);
  return { accepted: Number(m[1]), rejected: Number(m[2]) };
}

test(
  'local first, then RADIUS: a printed code never reaches RADIUS; a RADIUS voucher sells; an unknown code is ' +
    "RADIUS's to reject",
  async () => {
    const radius = await FreeRadius.start();
    const lab = await DaemonLab.create({ portalSocket: true, extraConfig: radiusSection(radius) });
    try {
      await lab.startDaemon();
      const [code] = (await lab.call('voucher_create', { plan: 'time', count: 1, steps: 10 })).codes as string[];
      const local = await lab.call('purchase', {
        mac: '02:00:00:00:1c:01',
        payment: { method: 'voucher', code: code! },
      });
      assert.is(String((local.session as { allotment: unknown }).allotment), '600');
      assert.equal(await radiusVouchers(lab), { accepted: 0, rejected: 0 }, 'the printed code was not asked of RADIUS');
      const viaRadius = await lab.call('purchase', {
        mac: '02:00:00:00:1c:02',
        payment: { method: 'voucher', code: 'timeuser', password: 'timepass' },
      });
      assert.is((viaRadius.session as { user: string }).user, 'timeuser');
      assert.equal(await radiusVouchers(lab), { accepted: 1, rejected: 0 });
      const wrong = await lab.callStatus('purchase', {
        mac: '02:00:00:00:1c:03',
        payment: { method: 'voucher', code: 'nobody' },
      });
      assert.is((wrong.data as { error: { code: string } }).error.code, 'ERR_VOUCHER_REJECTED');
      assert.equal(await radiusVouchers(lab), { accepted: 1, rejected: 1 });
    } finally {
      await lab.close();
      await radius.close();
    }
  },
);

test('a damaged book: RADIUS vouchers sell under the one wrong-code limit (6th refused, not asked)', async () => {
  const radius = await FreeRadius.start();
  const lab = await DaemonLab.create({ portalSocket: true, extraConfig: radiusSection(radius) });
  try {
    await lab.startDaemon();
    await lab.call('voucher_create', { plan: 'time', count: 1, steps: 1 });
    await lab.stopDaemon('SIGTERM');
    const book = join(lab.dir, 'state', 'vouchers.log');
    writeFileSync(book, readFileSync(book).subarray(0, -3));
    await lab.startDaemon();
    assert.match(lab.output, /payment method voucher unavailable/);
    const mac = '02:00:00:00:1c:04';
    const errorOf = async (code: string): Promise<string> => {
      const r = await lab.callStatus('purchase', { mac, payment: { method: 'voucher', code } });
      return (r.data as { error: { code: string } }).error.code;
    };
    for (let i = 0; i < 5; i++) assert.is(await errorOf(`nobody${i}`), 'ERR_VOUCHER_REJECTED');
    assert.equal(await radiusVouchers(lab), { accepted: 0, rejected: 5 });
    assert.is(await errorOf('nobody5'), 'ERR_VOUCHER_GUESS_LIMIT');
    assert.equal(await radiusVouchers(lab), { accepted: 0, rejected: 5 }, 'RADIUS was not asked');
    const other = await lab.call('purchase', {
      mac: '02:00:00:00:1c:05',
      payment: { method: 'voucher', code: 'timeuser', password: 'timepass' },
    });
    assert.is((other.session as { user: string }).user, 'timeuser', 'another device still buys');
  } finally {
    await lab.close();
    await radius.close();
  }
});

test.run();
