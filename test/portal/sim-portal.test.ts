// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PortalModel } from '../../src/sim/index.ts';
import type { PortalModelJson, SimClient } from '../../src/sim/portal.ts';
import { parseClient, parseSnapshot, PortalParseError } from '../../src/portal/index.ts';
import { ndsctlFixture } from './fixtures.ts';

/** Two hex digits of a number's low byte, for a MAC's part. */
const hexByte = (n: number): string => (n & 255).toString(16).padStart(2, '0');

const A = '02:00:00:00:0c:01';
const B = '02:00:00:00:0c:02';

/**
 * A Clock (ms) on whole seconds, as the portal counts: `seconds` reads it and `advance` moves it in the portal's unit.
 */
function fixedClock(start = 1795221700): { now: () => number; seconds: () => number; advance: (s: number) => void } {
  let t = start;
  return { now: () => t * 1000, seconds: () => t, advance: (s) => (t += s) };
}

function client(partial: Partial<SimClient> & Pick<SimClient, 'id' | 'mac' | 'ip' | 'token'>): SimClient {
  return {
    state: 'Preauthenticated',
    clientType: 'cpd_can',
    sessionStart: 0,
    sessionEnd: 0,
    lastActive: 0,
    custom: '',
    downloadRate: 0,
    uploadRate: 0,
    downloadPacketRate: 0,
    downloadBucketSize: 0,
    uploadPacketRate: 0,
    uploadBucketSize: 0,
    downloadQuota: 0,
    uploadQuota: 0,
    downloadBytes: 0,
    uploadBytes: 0,
    ...partial,
  };
}

/** Keys in document order, recursively, with the type of each leaf. */
function shape(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return typeof value;
  return Object.entries(value).map(([k, v]) => [/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(k) ? '<mac>' : k, shape(v)]);
}

test('the model reproduces the real 3-client capture byte for byte', () => {
  const state: PortalModelJson = {
    ...new PortalModel({ gatewayName: 'TGtest', clientIf: 'br-lan' }).toJSON(),
    // Byte counts chosen inside the capture's KiB and kbit/s rounding (duration 33 s).
    clients: [
      client({
        id: 1,
        mac: A,
        ip: '10.77.0.148',
        token: 'd7eecbd4',
        state: 'Authenticated',
        sessionStart: 1795221716,
        sessionEnd: 1795308116,
        lastActive: 1795221719,
        custom: 'bmE=',
        downloadBytes: 20996786,
        uploadBytes: 17077,
      }),
      client({
        id: 2,
        mac: B,
        ip: '10.77.0.149',
        token: '0fcb1f19',
        state: 'Authenticated',
        sessionStart: 1795221716,
        sessionEnd: 1795225316,
        lastActive: 1795221713,
        custom: 'order-42',
        downloadRate: 4000,
        uploadRate: 1000,
        downloadPacketRate: 655,
        downloadBucketSize: 20,
        uploadPacketRate: 5120,
        uploadBucketSize: 50,
        downloadQuota: 100000,
        uploadQuota: 20000,
        downloadBytes: 40926311,
      }),
      client({ id: 3, mac: '02:00:00:00:0c:03', ip: '10.77.0.150', token: '7727f673', lastActive: 1795221713 }),
    ],
  };
  const model = PortalModel.fromJSON(state, { clock: { now: () => 1795221749_000 } });
  assert.fixture(model.renderJson(), ndsctlFixture('opennds-9.10-all-3-clients.json'));
});

test('a fresh model renders the same structure as the real captures (keys, order, all strings)', () => {
  const clock = fixedClock();
  const model = new PortalModel({}, { clock });
  model.addClient(A, '10.77.0.148');
  assert.equal(
    shape(JSON.parse(model.renderJson())),
    shape(JSON.parse(ndsctlFixture('opennds-9.10-all-1-preauth.json'))),
  );
  assert.equal(
    shape(JSON.parse(model.renderJson('opennds', A))),
    shape(JSON.parse(ndsctlFixture('opennds-9.10-one-preauth.json'))),
  );
  model.auth(A, { sessionMinutes: 1, downloadQuotaKiB: 500, custom: 'pkg:abc123' });
  model.addClient(B, '10.77.0.149');
  const ours = JSON.parse(model.renderJson()) as { clients: Record<string, unknown> };
  const real = JSON.parse(ndsctlFixture('opennds-9.10-all-3-clients.json')) as { clients: Record<string, unknown> };
  assert.equal(Object.keys(ours), Object.keys(real));
  const realClientShape = shape(real.clients['02:00:00:00:0c:01']);
  for (const c of Object.values(ours.clients)) assert.equal(shape(c), realClientShape);
  const one = JSON.parse(model.renderJson('opennds', A)) as Record<string, unknown>;
  assert.equal(
    Object.keys(one),
    Object.keys(JSON.parse(ndsctlFixture('opennds-9.10-one-auth-with-timeout-quota-custom.json')) as object),
  );
  assert.ok(Object.values(one).every((v) => typeof v === 'string'));
  assert.is(one['download_quota'], '500');
  assert.is(one['upload_quota'], 'null');
  assert.is(one['custom'], 'pkg:abc123');
  assert.is(Number(one['session_end']) - Number(one['session_start']), 60);
});

test('rendered counters re-parse to the same values (KiB and kB floors)', () => {
  for (const flavour of ['opennds', 'nodogsplash'] as const) {
    const clock = fixedClock();
    const model = new PortalModel({ flavour }, { clock });
    model.addClient(A, '10.0.0.2');
    model.addClient(B, '10.0.0.3');
    model.auth(A);
    clock.advance(10);
    model.addTraffic(A, 123_456_789, 9_999);
    model.addTraffic(B, 5_000, 5_000); // not authenticated: not counted
    const unit = flavour === 'opennds' ? 1024 : 1000;
    const snap = parseSnapshot(model.renderJson());
    assert.is(snap.flavour, flavour);
    assert.is(snap.declaredCount, 2);
    const [a, b] = snap.clients;
    assert.is(a?.downloadBytes, Math.floor(123_456_789 / unit) * unit);
    assert.is(a?.uploadBytes, Math.floor(9_999 / unit) * unit);
    assert.is(a?.token, model.get(A)?.token);
    assert.is(a?.state, 'Authenticated');
    assert.is(b?.downloadBytes, 0);
    assert.is(b?.state, 'Preauthenticated');
    assert.equal(parseClient(model.renderJson(flavour, A)), a);
  }
});

test('openNDS: auth only from Preauthenticated, counters per auth, deauth removes, messages and exit codes', () => {
  const clock = fixedClock();
  const model = new PortalModel({}, { clock });
  model.addClient(A, '10.0.0.2');
  const token = model.get(A)?.token;
  assert.equal(model.execute(['auth', A, '30', '0', '0', '0', '2048', 'order-7']), {
    code: 0,
    stdout: `Client ${A},30,0,0,0,2048,order-7 authenticated.\n`,
    stderr: '',
  });
  const c = model.get(A);
  assert.is(c?.state, 'Authenticated');
  assert.is(c?.token, token, 'auth keeps the token');
  assert.is(c?.sessionEnd, clock.seconds() + 30 * 60);
  assert.is(c?.downloadQuota, 2048);
  assert.is(c?.uploadQuota, 0, '0 = the global default, here none');
  assert.equal(model.execute(['auth', A]), { code: 1, stdout: `Failed to authenticate client ${A}.\n`, stderr: '' });
  assert.equal(model.execute(['auth', '02:00:00:00:0c:99']), {
    code: 1,
    stdout: 'Failed to authenticate client 02:00:00:00:0c:99.\n',
    stderr: '',
  });
  model.addTraffic(A, 4096, 1024);
  assert.equal(model.execute(['deauth', A]), { code: 0, stdout: `Client ${A} deauthenticated.\n`, stderr: '' });
  assert.is(model.get(A), undefined, 'openNDS deauth removes the client');
  assert.is(model.execute(['json', A]).stdout, '{}\n');
  assert.equal(model.execute(['deauth', A]), { code: 1, stdout: `Client ${A} not found.\n`, stderr: '' });
  model.addClient(A, '10.0.0.2');
  assert.is(model.get(A)?.downloadBytes, 0, 'comes back with zero counters');
  assert.is.not(model.get(A)?.token, token, 'and a new token');
  assert.is(model.execute(['deauth', A]).code, 1, 'a Preauthenticated client cannot be deauthed');
});

test('openNDS: 0 or missing auth arguments mean the global defaults (session 1440 min)', () => {
  const clock = fixedClock();
  const model = new PortalModel({ downloadQuotaKiB: 777 }, { clock });
  model.addClient(A, '10.0.0.2');
  model.execute(['auth', A, '0', '0', '0', '0', '0']);
  assert.is(model.get(A)?.sessionEnd, clock.seconds() + 1440 * 60);
  assert.is(model.get(A)?.downloadQuota, 777);
  assert.is(model.get(A)?.custom, 'bmE=');
});

test('openNDS: lookup by IP and token too; json with a short argument lists everyone', () => {
  const model = new PortalModel({}, { clock: fixedClock() });
  model.addClient(A, '10.0.0.2');
  const token = model.get(A)?.token as string;
  assert.is(parseClient(model.execute(['json', '10.0.0.2']).stdout)?.mac, A);
  assert.is(parseClient(model.execute(['json', token]).stdout)?.mac, A);
  assert.is(parseSnapshot(model.execute(['json', 'x']).stdout).clients.length, 1);
});

test('openNDS preemptive authentication admits an unseen MAC only when enabled', () => {
  const off = new PortalModel({}, { clock: fixedClock() });
  assert.is(off.execute(['auth', A]).code, 1);
  const on = new PortalModel({ preemptive: true }, { clock: fixedClock() });
  assert.is(on.execute(['auth', A]).code, 0);
  assert.is(on.get(A)?.clientType, 'preemptive');
  assert.is(on.get(A)?.state, 'Authenticated');
});

test('openNDS enforce(): session timeout and quota (KiB) deauth the client', () => {
  const clock = fixedClock();
  const model = new PortalModel({}, { clock });
  model.addClient(A, '10.0.0.2');
  model.addClient(B, '10.0.0.3');
  model.auth(A, { sessionMinutes: 1 });
  model.auth(B, { downloadQuotaKiB: 10 });
  model.addTraffic(B, 10 * 1024 - 1, 0);
  assert.equal(model.enforce(), []);
  model.addTraffic(B, 1, 0);
  assert.equal(model.enforce(), [B]);
  clock.advance(60);
  assert.equal(model.enforce(), [A]);
  assert.is(model.size, 0);
});

test('restart/stop: the client table is gone; a stopped portal answers exit 3', () => {
  const model = new PortalModel({}, { clock: fixedClock() });
  model.addClient(A, '10.0.0.2');
  model.auth(A);
  model.restart();
  assert.is(model.size, 0);
  assert.is(parseSnapshot(model.execute(['json']).stdout).clients.length, 0);
  model.stop();
  const down = model.execute(['json']);
  assert.is(down.code, 3);
  assert.is(down.stdout, '');
  assert.match(down.stderr, /probably not started/);
  assert.is(model.execute(['nonsense']).code, 1);
  assert.match(model.execute(['nonsense']).stderr, /Unknown command: nonsense/);
});

test('nodogsplash: auth takes no arguments, deauth keeps the client Preauthenticated with a new token', () => {
  const clock = fixedClock();
  const model = new PortalModel({ flavour: 'nodogsplash' }, { clock });
  model.addClient(A, '10.0.0.2');
  const usage = model.execute(['auth', A, '60']);
  assert.is(usage.code, 1);
  assert.match(usage.stdout, /^Usage: ndsctl/);
  assert.is(model.get(A)?.state, 'Preauthenticated');
  assert.equal(model.execute(['auth', A]), { code: 0, stdout: `Client ${A} authenticated.\n`, stderr: '' });
  assert.is(model.get(A)?.sessionStart, 0, '`added` stays 0 after ndsctl auth');
  model.addTraffic(A, 5000, 2000);
  const token = model.get(A)?.token;
  assert.is(model.execute(['deauth', A]).code, 0);
  const after = model.get(A);
  assert.is(after?.state, 'Preauthenticated');
  assert.is(after?.downloadBytes, 0);
  assert.is.not(after?.token, token);
  assert.is(model.execute(['deauth', A]).code, 1);
});

test('nodogsplash: a splash-page auth prints inf/-nan in its first second, which the parser rejects', () => {
  const clock = fixedClock();
  const model = new PortalModel({ flavour: 'nodogsplash' }, { clock });
  model.addClient(A, '10.0.0.2');
  model.authViaSplash(A);
  model.addTraffic(A, 5000, 0);
  const text = model.renderJson();
  assert.match(text, /"avg_down_speed":inf,/);
  assert.match(text, /"avg_up_speed":-nan\n/);
  assert.throws(
    () => parseSnapshot(text),
    (err: unknown) => err instanceof PortalParseError,
  );
  clock.advance(1);
  assert.is(parseSnapshot(model.renderJson()).clients[0]?.downloadBytes, 5000);
});

test('toJSON / fromJSON round trip keeps clients, order, tokens and the token generator', () => {
  const clock = fixedClock();
  const model = new PortalModel({ gatewayName: 'x' }, { clock, seed: 99 });
  model.addClient(B, '10.0.0.3');
  model.addClient(A, '10.0.0.2');
  model.auth(A, { downloadQuotaKiB: 5 });
  model.addTraffic(A, 12345, 678);
  const copy = PortalModel.fromJSON(JSON.parse(JSON.stringify(model.toJSON())) as PortalModelJson, { clock });
  assert.is(copy.renderJson(), model.renderJson());
  copy.remove(B);
  model.remove(B);
  copy.addClient(B, '10.0.0.3');
  model.addClient(B, '10.0.0.3');
  assert.is(copy.get(B)?.token, model.get(B)?.token);
});

test('100k clients render to a snapshot that parses back whole', () => {
  const model = new PortalModel({}, { clock: fixedClock() });
  for (let i = 0; i < 100_000; i++) {
    const mac = `02:00:${hexByte(i >> 16)}:${hexByte(i >> 8)}:${hexByte(i)}:01`;
    model.addClient(mac, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    if (i % 2 === 0) {
      model.auth(mac);
      model.addTraffic(mac, i * 1024, i);
    }
  }
  const snap = parseSnapshot(model.renderJson());
  assert.is(snap.clients.length, 100_000);
  assert.is(snap.clients[99_998]?.downloadBytes, 99_998 * 1024);
});

test.run();
