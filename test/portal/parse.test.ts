// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { detectFlavour, parseClient, parseSnapshot, PortalParseError } from '../../src/portal/index.ts';
import { isSluiceError } from '../../src/errors.ts';
import { ndsctlFixture } from './fixtures.ts';

function throwsParse(fn: () => unknown, pattern?: RegExp): PortalParseError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof PortalParseError, `expected PortalParseError, got ${String(err)}`);
    assert.ok(isSluiceError(err, 'ERR_PORTAL_PARSE'));
    if (pattern) assert.match((err as Error).message, pattern);
    return err as PortalParseError;
  }
  throw new assert.Assertion({
    message: 'expected a PortalParseError',
    operator: 'throws',
    expects: 'throw',
    actual: 'no throw',
  });
}

test('openNDS all-3-clients capture: KiB counters become bytes, strings become numbers or null', () => {
  const snap = parseSnapshot(ndsctlFixture('opennds-9.10-all-3-clients.json'));
  assert.is(snap.flavour, 'opennds');
  assert.is(snap.declaredCount, 3);
  assert.equal(
    snap.clients.map((c) => c.mac),
    ['02:00:00:00:0c:01', '02:00:00:00:0c:02', '02:00:00:00:0c:03'],
  );
  const [a, b, c] = snap.clients;
  assert.equal(a, {
    mac: '02:00:00:00:0c:01',
    ip: '10.77.0.148',
    token: 'd7eecbd4',
    state: 'Authenticated',
    downloadBytes: 20504 * 1024,
    uploadBytes: 16 * 1024,
    sessionStart: 1795221716,
    sessionEnd: 1795308116,
    lastActive: 1795221719,
  });
  assert.is(b?.downloadBytes, 39967 * 1024);
  assert.is(b?.uploadBytes, 0);
  assert.is(b?.sessionEnd, 1795225316);
  assert.is(c?.state, 'Preauthenticated');
  assert.is(c?.sessionStart, null, 'session_start "0" means none');
  assert.is(c?.sessionEnd, null, 'session_end "null" means none');
  assert.is(c?.downloadBytes, 0);
});

test('openNDS all-1-preauth capture', () => {
  const snap = parseSnapshot(ndsctlFixture('opennds-9.10-all-1-preauth.json'), 'opennds');
  assert.is(snap.clients.length, 1);
  assert.is(snap.clients[0]?.state, 'Preauthenticated');
  assert.is(snap.clients[0]?.token, '4cbfc8f5');
});

test('openNDS single-client captures', () => {
  const after = parseClient(ndsctlFixture('opennds-9.10-one-after-20MiB-download.json'));
  assert.is(after?.downloadBytes, 20504 * 1024);
  assert.is(after?.uploadBytes, 14 * 1024);
  assert.is(after?.state, 'Authenticated');
  const quota = parseClient(ndsctlFixture('opennds-9.10-one-auth-with-timeout-quota-custom.json'), 'opennds');
  assert.is(quota?.sessionEnd, 1795221610);
  assert.is(quota?.downloadBytes, 0);
  const pre = parseClient(ndsctlFixture('opennds-9.10-one-preauth.json'));
  assert.is(pre?.state, 'Preauthenticated');
  assert.is(pre?.lastActive, 1795221525);
});

test('`{}` (unknown client) is null, with or without a trailing newline', () => {
  assert.is(parseClient('{}\n'), null);
  assert.is(parseClient('{}', 'opennds'), null);
  assert.is(parseClient('{}\n', 'nodogsplash'), null);
});

test('parseClient refuses a client list, parseSnapshot refuses a single client', () => {
  throwsParse(() => parseClient(ndsctlFixture('opennds-9.10-all-1-preauth.json')), /client list/);
  throwsParse(() => parseSnapshot(ndsctlFixture('opennds-9.10-one-preauth.json')), /client_list_length/);
});

test('nodogsplash: unquoted numbers, kB = 1000 bytes, added 0 = no session start', () => {
  const snap = parseSnapshot(ndsctlFixture('nodogsplash-5.0.2-all-2-clients.synthetic.json'));
  assert.is(snap.flavour, 'nodogsplash');
  assert.is(snap.declaredCount, 2);
  assert.equal(snap.clients[0], {
    mac: '02:00:00:00:0d:01',
    ip: '192.168.1.101',
    token: '1a2b3c4d',
    state: 'Authenticated',
    downloadBytes: 52428 * 1000,
    uploadBytes: 1048 * 1000,
    sessionStart: null,
    sessionEnd: null,
    lastActive: 1795221800,
  });
  const one = parseClient(ndsctlFixture('nodogsplash-5.0.2-one.synthetic.json'));
  assert.is(one?.downloadBytes, 52428 * 1000);
});

test('nodogsplash inf/-nan make the text invalid: an error, never a snapshot of zeroes', () => {
  const text = ndsctlFixture('nodogsplash-5.0.2-inf-nan.synthetic.json');
  throwsParse(() => parseSnapshot(text), /not valid JSON/);
  throwsParse(() => parseSnapshot(text.replace('-nan', '0.00')), /not valid JSON/); // inf alone
  throwsParse(() => parseSnapshot(text.replace('inf', 'nan').replace('-nan', '0.00')), /not valid JSON/);
});

test('truncated output (any cut) is an error', () => {
  const text = ndsctlFixture('opennds-9.10-all-3-clients.json');
  for (const cut of [1, 10, 100, text.length / 2, text.length - 3]) {
    throwsParse(() => parseSnapshot(text.slice(0, Math.floor(cut)), 'opennds'));
  }
  throwsParse(() => parseSnapshot(''), /cannot tell/);
  throwsParse(() => parseClient(''), /not valid JSON/);
});

test('a count that does not match the list is an error (openNDS and nodogsplash)', () => {
  const text = ndsctlFixture('opennds-9.10-all-3-clients.json');
  throwsParse(
    () => parseSnapshot(text.replace('"client_list_length":"3"', '"client_list_length":"4"')),
    /declares 4 clients but lists 3/,
  );
  const nds = ndsctlFixture('nodogsplash-5.0.2-all-2-clients.synthetic.json');
  throwsParse(
    () => parseSnapshot(nds.replace('"client_length": 2', '"client_length": 1')),
    /declares 1 clients but lists 2/,
  );
  // A client removed whole (a truncated-then-closed list) is caught by the count too.
  const doc = JSON.parse(text) as { clients: Record<string, unknown> };
  delete doc.clients['02:00:00:00:0c:02'];
  throwsParse(() => parseSnapshot(JSON.stringify(doc), 'opennds'), /declares 3 clients but lists 2/);
});

test('a MAC listed twice (JSON.parse keeps only the last key) is read as its last listing, not refused', () => {
  const text = ndsctlFixture('opennds-9.10-all-3-clients.json').replaceAll('02:00:00:00:0c:03', '02:00:00:00:0c:02');
  const snap = parseSnapshot(text);
  assert.is(snap.declaredCount, 3);
  assert.equal(
    snap.clients.map((c) => c.mac),
    ['02:00:00:00:0c:01', '02:00:00:00:0c:02'],
  );
  const last = parseSnapshot(ndsctlFixture('opennds-9.10-all-3-clients.json')).clients[2]!;
  assert.equal(snap.clients[1], { ...last, mac: '02:00:00:00:0c:02' });
});

test('negative, fractional, non-numeric or missing counters are rejected', () => {
  const text = ndsctlFixture('opennds-9.10-one-after-20MiB-download.json');
  for (const bad of ['"-1"', '"12.5"', '"abc"', '""', '"null"', '-1', 'null', 'true', '"1e3"']) {
    throwsParse(
      () => parseClient(text.replace('"download_this_session":"20504"', `"download_this_session":${bad}`)),
      /download_this_session/,
    );
  }
  throwsParse(() => parseClient(text.replace('  "upload_this_session":"14",\n', '')), /upload_this_session missing/);
  const nds = ndsctlFixture('nodogsplash-5.0.2-one.synthetic.json');
  for (const bad of ['-1', '1.5', '"12"', 'null']) {
    throwsParse(() => parseClient(nds.replace('"downloaded":52428', `"downloaded":${bad}`)), /downloaded/);
  }
});

test('counters are exact up to 2^53 and refused beyond', () => {
  const text = ndsctlFixture('opennds-9.10-one-after-20MiB-download.json');
  const maxKiB = Math.floor(Number.MAX_SAFE_INTEGER / 1024);
  const ok = parseClient(text.replace('"download_this_session":"20504"', `"download_this_session":"${maxKiB}"`));
  assert.is(ok?.downloadBytes, maxKiB * 1024);
  assert.ok(Number.isSafeInteger(ok?.downloadBytes));
  throwsParse(
    () => parseClient(text.replace('"download_this_session":"20504"', `"download_this_session":"${maxKiB + 1}"`)),
    /too large/,
  );
});

test('MACs are normalised; a key that disagrees with the mac field is an error', () => {
  const text = ndsctlFixture('opennds-9.10-all-1-preauth.json').replaceAll('02:00:00:00:0c:01', '02:00:00:00:0C:01');
  assert.is(parseSnapshot(text).clients[0]?.mac, '02:00:00:00:0c:01');
  const mismatch = ndsctlFixture('opennds-9.10-all-1-preauth.json').replace(
    '"mac":"02:00:00:00:0c:01"',
    '"mac":"02:00:00:00:0c:09"',
  );
  throwsParse(() => parseSnapshot(mismatch), /listed under/);
  const badMac = ndsctlFixture('opennds-9.10-one-preauth.json').replace(
    '"mac":"02:00:00:00:0c:01"',
    '"mac":"not-a-mac"',
  );
  throwsParse(() => parseClient(badMac), /no valid mac/);
});

test('trusted list after the clients (openNDS with trusted MACs): read, canonical, for the IPv6 gate', () => {
  const text = ndsctlFixture('opennds-9.10-all-1-preauth.json').replace(
    /  }\n}\n$/,
    '  },\n  "trusted_list_length":"1",\n  "trusted":[\n    "02:00:00:00:0c:09"\n  ]\n}\n',
  );
  assert.ok(text.includes('trusted_list_length'));
  assert.is(parseSnapshot(text).clients.length, 1);
  assert.equal(parseSnapshot(text.replace('02:00:00:00:0c:09', '02:00:00:00:0C:09')).trusted, ['02:00:00:00:0c:09']);
});

test('empty client lists', () => {
  assert.equal(parseSnapshot('{\n  "client_list_length":"0",\n  "clients":{\n  }\n}\n'), {
    flavour: 'opennds',
    clients: [],
    declaredCount: 0,
    trusted: [],
  });
  assert.equal(parseSnapshot('{\n"client_length": 0,\n"clients":{\n}\n}\n'), {
    flavour: 'nodogsplash',
    clients: [],
    declaredCount: 0,
    trusted: [],
  });
});

test('detectFlavour', () => {
  assert.is(detectFlavour(ndsctlFixture('opennds-9.10-all-3-clients.json')), 'opennds');
  assert.is(detectFlavour(ndsctlFixture('opennds-9.10-one-preauth.json')), 'opennds');
  assert.is(detectFlavour(ndsctlFixture('nodogsplash-5.0.2-all-2-clients.synthetic.json')), 'nodogsplash');
  assert.is(detectFlavour(ndsctlFixture('nodogsplash-5.0.2-one.synthetic.json')), 'nodogsplash');
  throwsParse(() => detectFlavour('{}'), /cannot tell/);
  throwsParse(() => detectFlavour(ndsctlFixture('opennds-9.10-status.txt')), /cannot tell/);
});

test('a forced wrong flavour is an error, not a misreading', () => {
  throwsParse(() => parseSnapshot(ndsctlFixture('opennds-9.10-all-3-clients.json'), 'nodogsplash'), /client_length/);
  throwsParse(
    () => parseSnapshot(ndsctlFixture('nodogsplash-5.0.2-all-2-clients.synthetic.json'), 'opennds'),
    /client_list_length/,
  );
  throwsParse(() => parseClient(ndsctlFixture('opennds-9.10-one-preauth.json'), 'nodogsplash'));
});

test('garbage never crashes: every input gives a snapshot or a PortalParseError', () => {
  const base = ndsctlFixture('opennds-9.10-all-3-clients.json');
  let seed = 12345;
  const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  for (let i = 0; i < 500; i++) {
    const chars = base.split('');
    for (let k = 0; k < 1 + rand(4); k++) chars[rand(chars.length)] = '"{}:,0a-\n'[rand(9)] as string;
    const mutated = chars.join('');
    for (const run of [() => parseSnapshot(mutated), () => parseClient(mutated)]) {
      try {
        const result = run();
        if (result !== null && 'clients' in result) {
          for (const c of result.clients) assert.ok(Number.isSafeInteger(c.downloadBytes) && c.downloadBytes >= 0);
        }
      } catch (err) {
        assert.ok(err instanceof PortalParseError, `unexpected ${String(err)}`);
      }
    }
  }
});

test.run();
