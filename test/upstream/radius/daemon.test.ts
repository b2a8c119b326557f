/**
 * The real daemon (dist/sluice.mjs) as a NAS in front of a real FreeRADIUS: voucher purchases, accounting records in
 * FreeRADIUS's detail file matching what sluice metered (> 4 GiB through gigawords), Disconnect/CoA from radclient,
 * and the outage test: sessions end while the server is down, the daemon is killed (-9) during the outage, and every
 * Stop arrives exactly once after recovery.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DaemonLab } from '../../daemon/harness.ts';
import { FreeRadius, freePort, radclient } from '../../peers/freeradius.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const mac = (n: number) => `02:00:00:00:0b:${n.toString(16).padStart(2, '0')}`;
const station = (m: string) => m.toUpperCase().replaceAll(':', '-');

interface Ctx { radius: FreeRadius; lab: DaemonLab; coaPort: number }
const t = suite<Ctx>('radius daemon', {} as Ctx);

t.before.each(async (c) => {
  c.radius = await FreeRadius.start();
  c.coaPort = await freePort();
  c.lab = await DaemonLab.create({ pollInterval: 0.3, checkpointInterval: 5, maxDevicesPerUser: 1, extraConfig: `
config radius 'radius'
\toption enabled '1'
\toption server '127.0.0.1'
\toption auth_port '${c.radius.authPort}'
\toption acct_port '${c.radius.acctPort}'
\toption secret '${c.radius.secret}'
\toption nas_identifier 'router-test'
\toption nas_ip '127.0.0.1'
\toption interim_interval '10'
\toption coa_port '${c.coaPort}'
\toption coa_listen '127.0.0.1'
\toption timeout '0.3'
\toption retries '1'
\toption backoff_max '2'
` });
  for (let i = 1; i <= 40; i++) c.lab.portal.addClient(mac(i), `10.0.1.${i}`);
  await c.lab.startDaemon();
});

t.after.each(async (c) => {
  await c.lab?.close();
  await c.radius?.close();
});

const lines = (c: Ctx, kind: string) => c.radius.acctLines().filter((l) => l.startsWith(`${kind} `));

t('voucher purchases: time+data voucher → data session with deadline; > 4 GiB metered and reported through gigawords', async (c) => {
  const { lab } = c;
  const a = await lab.call('purchase', { mac: mac(1), payment: { method: 'voucher', code: 'testuser', password: 'testpass' } });
  const s = a.session as Record<string, unknown>;
  assert.equal([s.metric, s.allotment, s.user], ['bytes', String(100 * MiB), 'testuser']);
  assert.ok(typeof s.expires_at === 'number' && Math.abs((s.expires_at as number) - (Date.now() / 1000 + 3600)) < 5, 'hard deadline from Session-Timeout');
  const rejected = await lab.callStatus('purchase', { mac: mac(2), payment: { method: 'voucher', code: 'nope', password: 'x' } });
  assert.is((rejected.data?.error as Record<string, unknown>).code, 'ERR_VOUCHER_REJECTED');
  assert.is((rejected.data?.error as Record<string, unknown>).message, 'Invalid voucher');

  const big = await lab.call('purchase', { mac: mac(3), ip: '10.0.1.3', payment: { method: 'voucher', code: 'biguser', password: 'bigpass' } });
  const bigId = (big.session as Record<string, unknown>).id as string;
  assert.is((big.session as Record<string, unknown>).allotment, String(5 * GiB));
  // 4.25 GiB down (to the client) and 0.5 GiB up (from it).
  lab.portal.addTraffic(mac(3), 4 * GiB + GiB / 4, GiB / 2);
  await lab.waitFor(async () => BigInt((await lab.session(mac(3))).used as string) >= BigInt(4 * GiB), 30_000, 'metered > 4 GiB');
  const metered = BigInt((await lab.session(mac(3))).used as string);
  await lab.call('terminate', { mac: mac(3) });
  await lab.waitFor(() => lines(c, 'Stop').some((l) => l.includes(bigId)), 10_000, 'Stop of the big session');
  const stop = c.radius.detail().find((r) => r['Acct-Session-Id'] === bigId && r['Acct-Status-Type'] === 'Stop')!;
  const input = BigInt(stop['Acct-Input-Gigawords']!) * 2n ** 32n + BigInt(stop['Acct-Input-Octets']!);
  const output = BigInt(stop['Acct-Output-Gigawords']!) * 2n ** 32n + BigInt(stop['Acct-Output-Octets']!);
  assert.is(input + output, metered, 'octets reported = octets metered');
  assert.is(stop['Acct-Output-Gigawords'], '1', 'download past 4 GiB carried in gigawords');
  assert.ok(output > input, 'output = to the client (NAS view)');
  assert.equal([stop['User-Name'], stop['Calling-Station-Id'], stop['NAS-Identifier'], stop['NAS-IP-Address'], stop['NAS-Port-Type'], stop['Acct-Terminate-Cause'], stop['Framed-IP-Address']],
    ['biguser', station(mac(3)), 'router-test', '127.0.0.1', 'Wireless-802.11', 'Admin-Reset', '10.0.1.3']);
  assert.ok(Number(stop['Acct-Session-Time']) >= 0 && stop['Event-Timestamp'] !== undefined && stop['Acct-Delay-Time'] !== undefined);
  assert.is(lines(c, 'Start').filter((l) => l.includes(bigId)).length, 1);
});

t('Interim-Update on top-up and by interval carry the usage so far; the voucher device limit pushes out the old device', async (c) => {
  const { lab } = c;
  const g = await lab.call('grant', { mac: mac(5), seconds: 3600 });
  const id = (g.session as Record<string, unknown>).id as string;
  lab.portal.addTraffic(mac(5), 3 * MiB, MiB);
  // A time session's view shows seconds, not bytes: give the meter a few ticks (poll_interval 0.3 s) to bill them.
  await new Promise((r) => setTimeout(r, 1500));
  await lab.call('grant', { mac: mac(5), seconds: 60 });
  await lab.waitFor(() => lines(c, 'Interim').some((l) => l.includes(id)), 10_000, 'Interim-Update after top-up');
  const interim = c.radius.detail().filter((r) => r['Acct-Session-Id'] === id && r['Acct-Status-Type'] === 'Interim-Update').at(-1)!;
  assert.equal([interim['Acct-Input-Octets'], interim['Acct-Output-Octets']], [String(MiB), String(3 * MiB)]);
  // A time-only voucher: a time session; the Accept's Class comes back in its accounting.
  const tv = await lab.call('purchase', { mac: mac(4), payment: { method: 'voucher', code: 'timeuser', password: 'timepass' } });
  const tvs = tv.session as Record<string, unknown>;
  assert.equal([tvs.metric, tvs.allotment, tvs.user], ['seconds', '600', 'timeuser']);
  await lab.waitFor(() => c.radius.detail().some((r) => r['Acct-Session-Id'] === tvs.id && r['Acct-Status-Type'] === 'Start'), 10_000, 'Start of the time voucher');
  assert.is(c.radius.detail().find((r) => r['Acct-Session-Id'] === tvs.id)!['Class'], '0x62696c6c696e672d3432');
  // The same voucher on a second device (limits.max_devices_per_user 1): the first session ends, Port-Preempted.
  const first = await lab.call('purchase', { mac: mac(6), payment: { method: 'voucher', code: 'testuser', password: 'testpass' } });
  const firstId = (first.session as Record<string, unknown>).id as string;
  await lab.call('purchase', { mac: mac(7), payment: { method: 'voucher', code: 'testuser', password: 'testpass' } });
  assert.is((await lab.session(mac(6))).end_cause, 'device-limit');
  await lab.waitFor(() => lines(c, 'Stop').some((l) => l.includes(firstId)), 10_000, 'Stop of the pushed-out device');
  const stop = c.radius.detail().find((r) => r['Acct-Session-Id'] === firstId && r['Acct-Status-Type'] === 'Stop')!;
  assert.is(stop['Acct-Terminate-Cause'], 'Port-Preempted');
});

t('radclient Disconnect ends a voucher session and closes its gate; CoA shortens a session to its end; NAKs', async (c) => {
  const { lab } = c;
  const v = await lab.call('purchase', { mac: mac(8), payment: { method: 'voucher', code: 'testuser', password: 'testpass' } });
  const id = (v.session as Record<string, unknown>).id as string;
  const target = `127.0.0.1:${c.coaPort}`;
  let r = await radclient(target, 'disconnect', c.radius.secret, `Acct-Session-Id="${id}", User-Name="testuser", Message-Authenticator=0x00`, { timeoutS: 5 });
  assert.match(r.output, /Received Disconnect-ACK/, r.output);
  assert.is((await lab.session(mac(8))).end_cause, 'disconnect');
  await lab.waitFor(() => lab.clientState(mac(8)) !== 'Authenticated', 10_000, 'gate closed');
  await lab.waitFor(() => lines(c, 'Stop').some((l) => l.includes(id) && l.endsWith('Admin-Reset')), 10_000, 'Stop Admin-Reset');
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
});

t('outage: Stops made while FreeRADIUS is down, across a kill -9, each arrive exactly once after recovery', async (c) => {
  const { lab, radius } = c;
  const ids: string[] = [];
  for (let i = 10; i < 20; i++) ids.push(((await lab.call('grant', { mac: mac(i), seconds: 3600 })).session as Record<string, unknown>).id as string);
  await lab.waitFor(() => lines(c, 'Start').length >= 10, 10_000, '10 Starts');
  await radius.stop();
  // While down: 5 terminated, 5 new short sessions start and expire by time.
  for (let i = 10; i < 15; i++) await lab.call('terminate', { mac: mac(i) });
  for (let i = 20; i < 25; i++) ids.push(((await lab.call('grant', { mac: mac(i), seconds: 1 })).session as Record<string, unknown>).id as string);
  await lab.waitFor(async () => (await lab.session(mac(24))).state === 'EXPIRED', 10_000, 'short sessions expired');
  await new Promise((r) => setTimeout(r, 500));
  await lab.stopDaemon('SIGKILL');
  await lab.startDaemon();
  // Still down after the restart: 2 more end.
  for (let i = 15; i < 17; i++) await lab.call('terminate', { mac: mac(i) });
  const stats = (await lab.call('stats')).upstream as Record<string, Record<string, Record<string, unknown>>>;
  assert.ok(Number(stats.radius!.accounting!.queued) >= 2, 'records wait in the queue');
  await radius.start();
  const produced = 12;
  await lab.waitFor(() => lines(c, 'Stop').length >= produced, 30_000, `${produced} Stops delivered`);
  // A little longer: a duplicate would show up now.
  await new Promise((r) => setTimeout(r, 3000));
  const stops = lines(c, 'Stop');
  const perSession = new Map<string, number>();
  for (const l of stops) perSession.set(l.split(' ')[2]!, (perSession.get(l.split(' ')[2]!) ?? 0) + 1);
  const delivered = perSession.size;
  const duplicated = stops.length - delivered;
  console.log(`outage test: Stops produced ${produced}, delivered ${delivered}, duplicated ${duplicated}; Starts ${lines(c, 'Start').length} for 15 sessions`);
  assert.is(delivered, produced);
  assert.is(duplicated, 0);
  const starts = lines(c, 'Start').map((l) => l.split(' ')[2]!);
  assert.is(starts.length, 15);
  assert.is(new Set(starts).size, 15);
  assert.ok([...perSession.keys()].every((id) => ids.includes(id)));
  // Causes: 7 Admin-Reset (terminate), 5 Session-Timeout (time-limit).
  assert.is(stops.filter((l) => l.endsWith('Admin-Reset')).length, 7);
  assert.is(stops.filter((l) => l.endsWith('Session-Timeout')).length, 5);

  // A clean restart keeps the 3 live sessions: no Stop for them.
  await lab.stopDaemon('SIGTERM');
  await lab.startDaemon();
  await new Promise((r) => setTimeout(r, 1500));
  assert.is(lines(c, 'Stop').length, produced);
});

t.run();
