// tier: peers; needs freeradius radclient
/**
 * Live changes to a session on the real daemon (dist/sluice.mjs), by FreeRADIUS's radclient
 * (CoA-Request, RFC 5176) and by ubus `change`, the one path (SessionManager.setLimits): ACK with the new limits in
 * force at once, and each NAK with its Error-Cause.
 */
import * as assert from 'uvu/assert';
import { radclient } from '../../peers/freeradius.ts';
import { mac, meteredFromNow, radiusDaemonSuite, type RadiusLab } from './daemon-lab.ts';

const MiB = 1024 ** 2;
const t = radiusDaemonSuite('radius daemon CoA');
const nowS = (): number => Math.floor(Date.now() / 1000);

t(
  'CoA-Request raises then lowers a data session without a deauth; lowered below its use, it ends at once; NAK ' +
    '503, 401, 402, 404',
  async (c: RadiusLab) => {
    const { lab } = c;
    const target = `127.0.0.1:${c.coaPort}`;
    const g = await lab.call('grant', { mac: mac(11), bytes: 8 * MiB, user: 'room-11' });
    const id = (g.session as Record<string, unknown>).id as string;
    await meteredFromNow(c, mac(11));

    // Raised by the server (Mikrotik-Total-Limit is bytes): in force when the ACK is read, the gate never closed.
    let r = await radclient(
      target,
      'coa',
      c.radius.secret,
      `Acct-Session-Id="${id}", Mikrotik-Total-Limit=${20 * MiB}`,
      { timeoutS: 5 },
    );
    assert.match(r.output, /Received CoA-ACK/, r.output);
    assert.equal(
      [(await lab.session(mac(11))).allotment, (await lab.session(mac(11))).state],
      [String(20 * MiB), 'ACTIVE'],
    );
    assert.is(lab.clientState(mac(11)), 'Authenticated');

    // Each refusal names its Error-Cause and changes nothing.
    r = await radclient(target, 'coa', c.radius.secret, `Acct-Session-Id="no-such-session", Session-Timeout=60`, {
      timeoutS: 5,
    });
    assert.match(r.output, /Received CoA-NAK[\s\S]*Error-Cause = Session-Context-Not-Found/, r.output);
    r = await radclient(target, 'coa', c.radius.secret, `Acct-Session-Id="${id}", Filter-Id="gold"`, { timeoutS: 5 });
    assert.match(r.output, /Received CoA-NAK[\s\S]*Error-Cause = Unsupported-Attribute/, r.output);
    r = await radclient(target, 'coa', c.radius.secret, `User-Name="room-11", Session-Timeout=60`, { timeoutS: 5 });
    assert.match(
      r.output,
      /Received CoA-NAK[\s\S]*Error-Cause = Missing-Attribute/,
      'unbound (no Acct-Session-Id nor Event-Timestamp): 402',
    );
    r = await radclient(target, 'coa', c.radius.secret, `User-Name="room-11", Event-Timestamp=${nowS()}`, {
      timeoutS: 5,
    });
    assert.match(r.output, /Received CoA-NAK[\s\S]*Error-Cause = Invalid-Request/, 'nothing to change: 404');
    assert.equal(
      [(await lab.session(mac(11))).allotment, (await lab.session(mac(11))).state],
      [String(20 * MiB), 'ACTIVE'],
    );

    // Lowered below what it used: ends data-limit at once and its gate closes.
    lab.portal.addTraffic(mac(11), 2 * MiB, MiB);
    await lab.waitFor(async () => Number((await lab.session(mac(11))).used) >= 3 * MiB, 30_000, '3 MiB metered');
    r = await radclient(
      target,
      'coa',
      c.radius.secret,
      `User-Name="room-11", ChilliSpot-Max-Total-Octets=${2 * MiB}, Event-Timestamp=${nowS()}`,
      { timeoutS: 5 },
    );
    assert.match(r.output, /Received CoA-ACK/, r.output);
    const ended = await lab.session(mac(11));
    assert.equal([ended.state, ended.end_cause], ['EXPIRED', 'data-limit']);
    await lab.waitFor(() => lab.clientState(mac(11)) !== 'Authenticated', 10_000, 'gate closed at the lowered limit');
  },
);

t('ubus change: the same change as a CoA (by mac or id, seconds and/or bytes); its refusals', async (c: RadiusLab) => {
  const { lab } = c;
  await lab.call('grant', { mac: mac(12), bytes: 8 * MiB });
  const timed = await lab.call('grant', { mac: mac(13), seconds: 600 });
  const timedId = (timed.session as Record<string, unknown>).id as string;

  const up = await lab.call('change', { mac: mac(12), bytes: 16 * MiB, seconds: 7200 });
  const s = up.session as Record<string, unknown>;
  assert.equal([s.allotment, s.state, s.metric], [String(16 * MiB), 'ACTIVE', 'bytes']);
  assert.ok(typeof s.expires_at === 'number', 'seconds on a data session: a hard deadline');
  const longer = await lab.call('change', { id: timedId, seconds: 1200 });
  assert.is((longer.session as Record<string, unknown>).allotment, '1200');

  const code = async (args: Record<string, unknown>) => {
    const r = await lab.callStatus('change', args as never);
    return (r.data?.error as Record<string, unknown> | undefined)?.code;
  };
  assert.is(await code({ mac: mac(13), bytes: MiB }), 'ERR_SESSION_METRIC_MISMATCH');
  assert.is(await code({ mac: mac(14), seconds: 60 }), 'ERR_SESSION_NOT_FOUND');
  assert.is(await code({ mac: mac(12) }), 'ERR_INVALID_ARGUMENT');
  assert.is(await code({ seconds: 60 }), 'ERR_INVALID_ARGUMENT');
  assert.is(
    await code({ id: timedId, mac: mac(12), seconds: 60 }),
    'ERR_SESSION_NOT_FOUND',
    'id and mac must name the same session',
  );

  // To zero: ends at once, like a CoA past the use.
  const zero = await lab.call('change', { mac: mac(12), bytes: 0 });
  assert.equal(
    [(zero.session as Record<string, unknown>).state, (zero.session as Record<string, unknown>).end_cause],
    ['EXPIRED', 'data-limit'],
  );
  await lab.waitFor(() => lab.clientState(mac(12)) !== 'Authenticated', 10_000, 'gate closed');
});

t.run();
