// tier: peers; needs freeradius radclient
/**
 * The real daemon (dist/sluice.mjs) as a NAS in front of a real FreeRADIUS: voucher purchases, accounting records in
 * FreeRADIUS's detail file matching what sluice metered (> 4 GiB through gigawords), Disconnect/CoA from radclient.
 * The outage test is in daemon-outage.test.ts; the lab setup in daemon-lab.ts.
 */
import * as assert from 'uvu/assert';
import { radclient } from '../../peers/freeradius.ts';
import { acctLines, mac, meteredFromNow, radiusDaemonSuite, station, type RadiusLab } from './daemon-lab.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const t = radiusDaemonSuite('radius daemon');

t(
  'voucher purchases: time+data voucher → data session with deadline; > 4 GiB metered and reported through gigawords',
  async (c: RadiusLab) => {
    const { lab } = c;
    const a = await lab.call('purchase', {
      mac: mac(1),
      payment: { method: 'voucher', code: 'testuser', password: 'testpass' },
    });
    const s = a.session as Record<string, unknown>;
    assert.equal([s.metric, s.allotment, s.user], ['bytes', String(100 * MiB), 'testuser']);
    assert.ok(
      typeof s.expires_at === 'number' && Math.abs((s.expires_at as number) - (Date.now() / 1000 + 3600)) < 5,
      'hard deadline from Session-Timeout',
    );
    const rejected = await lab.callStatus('purchase', {
      mac: mac(2),
      payment: { method: 'voucher', code: 'nope', password: 'x' },
    });
    assert.is((rejected.data?.error as Record<string, unknown>).code, 'ERR_VOUCHER_REJECTED');
    assert.is((rejected.data?.error as Record<string, unknown>).message, 'Invalid voucher');

    const big = await lab.call('purchase', {
      mac: mac(3),
      ip: '10.0.1.3',
      payment: { method: 'voucher', code: 'biguser', password: 'bigpass' },
    });
    const bigId = (big.session as Record<string, unknown>).id as string;
    assert.is((big.session as Record<string, unknown>).allotment, String(5 * GiB));
    // 4.25 GiB down (to the client) and 0.5 GiB up (from it).
    await meteredFromNow(c, mac(3));
    lab.portal.addTraffic(mac(3), 4 * GiB + GiB / 4, GiB / 2);
    await lab.waitFor(
      async () => BigInt((await lab.session(mac(3))).used as string) >= BigInt(4 * GiB),
      60_000,
      'metered > 4 GiB',
    );
    // 0.25 GiB left at this rate: the meter may end the session itself at that reading (it bills the remainder that
    // would pass while the gate closes: data-limit); otherwise the admin ends it.
    const byAdmin =
      (await lab.session(mac(3))).state === 'ACTIVE' &&
      (await lab.callStatus('terminate', { mac: mac(3) })).status === 0;
    await lab.waitFor(() => acctLines(c, 'Stop').some((l) => l.includes(bigId)), 10_000, 'Stop of the big session');
    const final = await lab.session(mac(3));
    assert.is(final.id, bigId);
    const metered = BigInt(final.used as string);
    const stop = c.radius.detail().find((r) => r['Acct-Session-Id'] === bigId && r['Acct-Status-Type'] === 'Stop')!;
    const input = BigInt(stop['Acct-Input-Gigawords']!) * 2n ** 32n + BigInt(stop['Acct-Input-Octets']!);
    const output = BigInt(stop['Acct-Output-Gigawords']!) * 2n ** 32n + BigInt(stop['Acct-Output-Octets']!);
    assert.is(input + output, metered, 'octets reported = octets metered');
    assert.is(stop['Acct-Output-Gigawords'], '1', 'download past 4 GiB carried in gigawords');
    assert.ok(output > input, 'output = to the client (NAS view)');
    assert.equal(
      [
        stop['User-Name'],
        stop['Calling-Station-Id'],
        stop['NAS-Identifier'],
        stop['NAS-IP-Address'],
        stop['NAS-Port-Type'],
        stop['Acct-Terminate-Cause'],
        stop['Framed-IP-Address'],
      ],
      [
        'biguser',
        station(mac(3)),
        'router-test',
        '127.0.0.1',
        'Wireless-802.11',
        byAdmin ? 'Admin-Reset' : 'Session-Timeout',
        '10.0.1.3',
      ],
    );
    assert.is(final.end_cause, byAdmin ? 'admin' : 'data-limit');
    assert.ok(
      Number(stop['Acct-Session-Time']) >= 0 &&
        stop['Event-Timestamp'] !== undefined &&
        stop['Acct-Delay-Time'] !== undefined,
    );
    assert.is(acctLines(c, 'Start').filter((l) => l.includes(bigId)).length, 1);
  },
);

t(
  'Interim-Update on top-up and by interval carry the usage so far; the voucher device limit pushes out the old device',
  async (c: RadiusLab) => {
    const { lab } = c;
    const g = await lab.call('grant', { mac: mac(5), seconds: 3600 });
    const id = (g.session as Record<string, unknown>).id as string;
    await meteredFromNow(c, mac(5));
    lab.portal.addTraffic(mac(5), 3 * MiB, MiB);
    // A time session's view shows seconds, not bytes: two ticks bill what was added.
    await meteredFromNow(c, mac(5));
    await lab.call('grant', { mac: mac(5), seconds: 60 });
    // An Interim-Update carries the octets on flash (NAS view: input = the client's upload): the top-up's, or, when the
    // 5 s checkpoint has not written them yet, the next one by the 10 s interval.
    const interims = () =>
      c.radius.detail().filter((r) => r['Acct-Session-Id'] === id && r['Acct-Status-Type'] === 'Interim-Update');
    await lab.waitFor(
      () => interims().some((r) => r['Acct-Input-Octets'] === String(MiB)),
      30_000,
      'Interim-Update with the usage',
    );
    const interim = interims().find((r) => r['Acct-Input-Octets'] === String(MiB))!;
    assert.equal(
      [interim['Acct-Input-Octets'], interim['Acct-Output-Octets'], interim['Acct-Input-Gigawords']],
      [String(MiB), String(3 * MiB), '0'],
    );
    // A time-only voucher: a time session; the Accept's Class comes back in its accounting.
    const tv = await lab.call('purchase', {
      mac: mac(4),
      payment: { method: 'voucher', code: 'timeuser', password: 'timepass' },
    });
    const tvs = tv.session as Record<string, unknown>;
    assert.equal([tvs.metric, tvs.allotment, tvs.user], ['seconds', '600', 'timeuser']);
    await lab.waitFor(
      () => c.radius.detail().some((r) => r['Acct-Session-Id'] === tvs.id && r['Acct-Status-Type'] === 'Start'),
      10_000,
      'Start of the time voucher',
    );
    assert.is(c.radius.detail().find((r) => r['Acct-Session-Id'] === tvs.id)!['Class'], '0x62696c6c696e672d3432');
    // The same voucher on a second device (limits.max_devices_per_user 1): the first session ends, Port-Preempted.
    const first = await lab.call('purchase', {
      mac: mac(6),
      payment: { method: 'voucher', code: 'testuser', password: 'testpass' },
    });
    const firstId = (first.session as Record<string, unknown>).id as string;
    await lab.call('purchase', { mac: mac(7), payment: { method: 'voucher', code: 'testuser', password: 'testpass' } });
    assert.is((await lab.session(mac(6))).end_cause, 'device-limit');
    await lab.waitFor(
      () => acctLines(c, 'Stop').some((l) => l.includes(firstId)),
      10_000,
      'Stop of the pushed-out device',
    );
    const stop = c.radius.detail().find((r) => r['Acct-Session-Id'] === firstId && r['Acct-Status-Type'] === 'Stop')!;
    assert.is(stop['Acct-Terminate-Cause'], 'Port-Preempted');
  },
);

t(
  'radclient Disconnect ends a voucher session and closes its gate; CoA shortens a session to its end; NAKs',
  async (c: RadiusLab) => {
    const { lab } = c;
    const v = await lab.call('purchase', {
      mac: mac(8),
      payment: { method: 'voucher', code: 'testuser', password: 'testpass' },
    });
    const id = (v.session as Record<string, unknown>).id as string;
    const target = `127.0.0.1:${c.coaPort}`;
    let r = await radclient(
      target,
      'disconnect',
      c.radius.secret,
      `Acct-Session-Id="${id}", User-Name="testuser", Message-Authenticator=0x00`,
      { timeoutS: 5 },
    );
    assert.match(r.output, /Received Disconnect-ACK/, r.output);
    assert.is((await lab.session(mac(8))).end_cause, 'disconnect');
    await lab.waitFor(() => lab.clientState(mac(8)) !== 'Authenticated', 10_000, 'gate closed');
    await lab.waitFor(
      () => acctLines(c, 'Stop').some((l) => l.includes(id) && l.endsWith('Admin-Reset')),
      10_000,
      'Stop Admin-Reset',
    );
    r = await radclient(target, 'disconnect', c.radius.secret, `Acct-Session-Id="${id}"`, { timeoutS: 5 });
    assert.match(r.output, /Disconnect-NAK[\s\S]*Session-Context-Not-Found/);
    r = await radclient(target, 'disconnect', c.radius.secret, `NAS-Identifier="router-test"`, { timeoutS: 5 });
    assert.match(r.output, /Disconnect-NAK[\s\S]*Missing-Attribute/);
    r = await radclient(target, 'disconnect', 'wrong-secret', `User-Name="testuser"`, { timeoutS: 1 });
    assert.match(r.output, /No reply from server/);

    const g = await lab.call('grant', { mac: mac(9), seconds: 3600 });
    const gid = (g.session as Record<string, unknown>).id as string;
    r = await radclient(target, 'coa', c.radius.secret, `Acct-Session-Id="${gid}", Session-Timeout=3`, { timeoutS: 5 });
    assert.match(r.output, /Received CoA-ACK/);
    await lab.waitFor(async () => (await lab.session(mac(9))).state === 'EXPIRED', 10_000, 'CoA limit reached');
    assert.is((await lab.session(mac(9))).end_cause, 'time-limit');
    await lab.waitFor(() => lab.clientState(mac(9)) !== 'Authenticated', 10_000, 'gate closed at the new limit');
  },
);

t.run();
