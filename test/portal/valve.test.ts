// tier: daemon
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openNdsAuthArgs, UNLIMITED_QUOTA_KIB, UNLIMITED_SESSION_MINUTES, Valve } from '../../src/portal/index.ts';
import { PortalModel } from '../../src/sim/index.ts';
import { isSluiceError } from '../../src/errors.ts';
import { PortalStateFile, readStateFile, writeStateFile } from '../peers/ndsctl-state.ts';
import { fakeSpawn } from './fake-spawn.ts';
import { rejectsWithCode } from '../helpers/assert.ts';

const A = '02:00:00:00:0c:01';
const B = '02:00:00:00:0c:02';
/** An IPv6 gate that reports every client open: the valve makes no opening ahead of its auths. */
const alreadyOpen = { isOpen: () => true, withdraw: async () => undefined };
const files: PortalStateFile[] = [];
const valves: Valve[] = [];

function setup(
  config: Parameters<typeof PortalStateFile.create>[0] = {},
  opts: Partial<ConstructorParameters<typeof Valve>[0]> = {},
): { file: PortalStateFile; valve: Valve } {
  const file = PortalStateFile.create(config);
  file.enableLog();
  files.push(file);
  const valve = new Valve({ command: file.command, busyBackoffMs: 20, ...opts });
  valves.push(valve);
  return { file, valve };
}

/** The ndsctl subcommands the stand-in answered, in order. */
function calls(file: PortalStateFile): string[] {
  return file.logLines().map((l) => l.split(' ').slice(4).join(' '));
}

test.after(async () => {
  for (const v of valves) await v.destroy();
  for (const f of files) f.cleanup();
});

test('open on a Preauthenticated client → opened; the portal holds the safety net', async () => {
  const { file, valve } = setup();
  file.addClient(A, '10.0.0.2');
  const token = file.read().model.get(A)!.token;
  assert.is(
    await valve.open('02-00-00-00-0C-01', { sessionMinutes: 90, downloadQuotaKiB: 2048.5, custom: 'sess-42' }),
    'opened',
  );
  const c = file.read().model.get(A);
  assert.is(c?.state, 'Authenticated');
  assert.is(c?.downloadQuota, 2049, 'rounded up');
  assert.is(c?.uploadQuota, UNLIMITED_QUOTA_KIB, 'unwanted limit = large explicit value, never 0 (= global default)');
  assert.is((c?.sessionEnd ?? 0) - (c?.sessionStart ?? 0), 90 * 60);
  assert.is(c?.custom, 'sess-42');
  assert.is(c?.downloadRate, 0, 'no per-client rate (openNDS 9.10 freezes the upload counter under one)');
  assert.is(c?.uploadRate, 0);
  // The auth goes by the token the lookup just showed for A (flat on openNDS, no hash of every client).
  assert.equal(calls(file), [`json ${A}`, `auth ${token} 90 0 0 ${UNLIMITED_QUOTA_KIB} 2049 sess-42`]);
  assert.is(valve.flavour, 'opennds');
});

test('open without a safety net passes large explicit values', async () => {
  const { file, valve } = setup();
  file.addClient(A, '10.0.0.2');
  assert.is(await valve.open(A), 'opened');
  const c = file.read().model.get(A);
  assert.is((c?.sessionEnd ?? 0) - (c?.sessionStart ?? 0), UNLIMITED_SESSION_MINUTES * 60);
  assert.is(c?.downloadQuota, UNLIMITED_QUOTA_KIB);
});

test('open on an Authenticated client → already-open, NO auth call, counters untouched (top-up)', async () => {
  const { file, valve } = setup();
  file.addClient(A, '10.0.0.2');
  assert.is(await valve.open(A), 'opened');
  file.addTraffic(A, 5 * 1024 * 1024, 4096);
  assert.is(await valve.open(A, { sessionMinutes: 5 }), 'already-open');
  assert.equal(calls(file).filter((c) => c.startsWith('auth')).length, 1);
  // Looked up by the token the first lookup showed (it survives the auth).
  assert.equal(calls(file).slice(-1), [`json ${file.read().model.get(A)!.token}`]);
  assert.is(file.read().model.get(A)?.downloadBytes, 5 * 1024 * 1024);
  assert.is((await valve.client(A))?.downloadBytes, 5 * 1024 * 1024);
});

test('open on an unknown MAC → ERR_PORTAL_CLIENT_UNKNOWN without an auth attempt', async () => {
  const { file, valve } = setup();
  await rejectsWithCode(valve.open(B), 'ERR_PORTAL_CLIENT_UNKNOWN');
  assert.equal(calls(file), [`json ${B}`]);
});

test('open with preemptive on tries the auth for an unseen MAC', async () => {
  const { file, valve } = setup({ config: { preemptive: true } }, { preemptive: true });
  assert.is(await valve.open(B), 'opened');
  assert.is(file.read().model.get(B)?.state, 'Authenticated');
});

test('open on a Blocked client → ERR_PORTAL_CLIENT_BLOCKED', async () => {
  const { file, valve } = setup();
  file.addClient(A, '10.0.0.2');
  const state = readStateFile(file.path);
  (state.portal.clients[0] as { state: string }).state = 'Blocked';
  writeStateFile(file.path, state);
  await rejectsWithCode(valve.open(A), 'ERR_PORTAL_CLIENT_BLOCKED');
});

test(
  "open with the client's address known (openNDS): the " + 'auth goes at once, without the `json <mac>` lookup',
  async () => {
    const { file, valve } = setup({}, { flavour: 'opennds' });
    file.addClient(A, '10.0.0.2');
    assert.is(await valve.open(A, { sessionMinutes: 90 }, '10.0.0.2'), 'opened');
    assert.equal(calls(file), [`auth ${A} 90 0 0 ${UNLIMITED_QUOTA_KIB} ${UNLIMITED_QUOTA_KIB}`]);
    assert.is(file.read().model.get(A)?.state, 'Authenticated');
    assert.is(valve.lastIp(A), '10.0.0.2', 'the gate tells the session the address it opened for');
  },
);

test(
  'open with the address known on an Authenticated client: openNDS refuses the auth, looked up → already-open, ' +
    'counters untouched',
  async () => {
    const { file, valve } = setup({}, { flavour: 'opennds' });
    file.addClient(A, '10.0.0.2');
    assert.is(await valve.open(A), 'opened');
    file.addTraffic(A, 5 * 1024 * 1024, 4096);
    assert.is(await valve.open(A, { sessionMinutes: 5 }, '10.0.0.2'), 'already-open');
    assert.equal(
      calls(file)
        .slice(-2)
        .map((c) => c.split(' ')[0]),
      ['auth', 'json'],
    );
    assert.is(file.read().model.get(A)?.downloadBytes, 5 * 1024 * 1024);
  },
);

test("the client's IPv6 opens with its quota before the auth; taken back when the auth opens no gate", async () => {
  const log: string[] = [];
  const open = new Set<string>();
  const ipv6 = {
    open: async (mac: string) => void (open.has(mac) || (open.add(mac), log.push(`ipv6 ${mac}`))),
    isOpen: (mac: string) => open.has(mac),
    withdraw: async (mac: string) => void (open.delete(mac) && log.push(`withdraw ${mac}`)),
    close: async (mac: string) => void open.delete(mac),
  };
  const { file, valve } = setup(
    {},
    {
      flavour: 'opennds',
      ipv6,
      brake: { beforeAuth: async (mac) => void log.push(`brake ${mac}`), afterDeauth: async () => undefined },
    },
  );
  file.addClient(A, '10.0.0.2');
  file.addClient(B, '10.0.0.3');
  const state = readStateFile(file.path);
  (state.portal.clients[1] as { state: string }).state = 'Blocked';
  writeStateFile(file.path, state);
  assert.is(await valve.open(A, { dataBytes: 1_000_000 }, '10.0.0.2', true), 'opened');
  assert.equal(log, [`brake ${A}`, `ipv6 ${A}`], 'both before the auth, in the same turn');
  assert.equal(
    calls(file).map((c) => c.split(' ')[0]),
    ['auth'],
  );
  log.length = 0;
  await rejectsWithCode(valve.open(B, { dataBytes: 1_000_000 }, '10.0.0.3', true), 'ERR_PORTAL_CLIENT_BLOCKED');
  assert.equal(log, [`brake ${B}`, `ipv6 ${B}`, `withdraw ${B}`], 'the refused auth took its IPv6 back');
  assert.ok(open.has(A) && !open.has(B));
  // Open already (a re-open of a gate sluice holds): a failed auth leaves its IPv6 as it was.
  log.length = 0;
  open.add(B);
  await rejectsWithCode(valve.open(B, { dataBytes: 1_000_000 }, '10.0.0.3', true), 'ERR_PORTAL_CLIENT_BLOCKED');
  assert.equal(log, [`brake ${B}`]);
  assert.ok(open.has(B));
});

test('open with the address known: an unknown or Blocked client is told as without it', async () => {
  const { file, valve } = setup({}, { flavour: 'opennds' });
  await rejectsWithCode(valve.open(B, undefined, '10.0.0.3'), 'ERR_PORTAL_CLIENT_UNKNOWN');
  file.addClient(A, '10.0.0.2');
  const state = readStateFile(file.path);
  (state.portal.clients[0] as { state: string }).state = 'Blocked';
  writeStateFile(file.path, state);
  await rejectsWithCode(valve.open(A, undefined, '10.0.0.2'), 'ERR_PORTAL_CLIENT_BLOCKED');
});

test(
  "open keeps the lookup when the address must be the portal's (kernel quota, speed tier) or the flavour is not " +
    'known to be openNDS',
  async () => {
    const braked: Array<string | null> = [];
    const brake = {
      beforeAuth: async (_mac: string, ip: string | null) => {
        braked.push(ip);
      },
      afterDeauth: async () => {},
    };
    const { file, valve } = setup({}, { flavour: 'opennds', brake });
    file.addClient(A, '10.0.0.2');
    assert.is(await valve.open(A, { downloadQuotaKiB: 100, dataBytes: 100 * 1024 }, '10.9.9.9'), 'opened');
    assert.equal(
      calls(file).map((c) => c.split(' ')[0]),
      ['json', 'auth'],
    );
    assert.equal(braked, ['10.0.0.2'], 'the kernel quota gets the address the portal lists, not the one given');
    const auto = setup();
    auto.file.addClient(A, '10.0.0.2');
    assert.is(await auto.valve.open(A, undefined, '10.0.0.2'), 'opened');
    assert.equal(
      calls(auto.file).map((c) => c.split(' ')[0]),
      ['json', 'auth'],
      'flavour auto: detected by the lookup',
    );
  },
);

test(
  "open with the address listed (the ticks' list showed it): the kernel quota and the speed tier take it, the " +
    'auth goes at once',
  async () => {
    const braked: Array<string | null> = [];
    const brake = {
      beforeAuth: async (_mac: string, ip: string | null) => {
        braked.push(ip);
      },
      afterDeauth: async () => {},
    };
    const { file, valve } = setup({}, { flavour: 'opennds', brake });
    file.addClient(A, '10.0.0.2');
    assert.is(await valve.open(A, { downloadQuotaKiB: 100, dataBytes: 100 * 1024 }, '10.0.0.2', true), 'opened');
    assert.equal(
      calls(file).map((c) => c.split(' ')[0]),
      ['auth'],
    );
    assert.equal(braked, ['10.0.0.2']);
    assert.is(valve.lastIp(A), '10.0.0.2');
    // Already open (openNDS refuses the auth): looked up after, as on the direct path without the quota.
    assert.is(await valve.open(A, { downloadQuotaKiB: 100, dataBytes: 100 * 1024 }, '10.0.0.2', true), 'already-open');
    assert.equal(
      calls(file)
        .slice(-2)
        .map((c) => c.split(' ')[0]),
      ['auth', 'json'],
    );
  },
);

test(
  "the kernel counters: made before every auth (a time session too, so its address is the portal's), removed " +
    'after every deauth',
  async () => {
    const seen: string[] = [];
    let file!: PortalStateFile;
    const counter = {
      // What the portal had done when the counters were made: they must precede the auth.
      beforeAuth: async (mac: string, ip: string | null) => {
        seen.push(
          `count ${mac} ${ip} after ${calls(file)
            .map((c) => c.split(' ')[0])
            .join(',')}`,
        );
      },
      afterDeauth: async (mac: string) => {
        seen.push(
          `uncount ${mac} after ${calls(file)
            .map((c) => c.split(' ')[0])
            .join(',')}`,
        );
      },
    };
    const made = setup({}, { flavour: 'opennds', counter });
    file = made.file;
    file.addClient(A, '10.0.0.2');
    // A time session (no safety net) with an address given but not listed: looked up, the portal's address counted.
    assert.is(await made.valve.open(A, undefined, '10.9.9.9'), 'opened');
    assert.equal(
      calls(file).map((c) => c.split(' ')[0]),
      ['json', 'auth'],
    );
    assert.is(await made.valve.close(A), 'closed');
    assert.equal(seen, [`count ${A} 10.0.0.2 after json`, `uncount ${A} after json,auth,deauth`]);
  },
);

test('open with the address in the neighbour table: one call; refused → looked up, kernel side undone', async () => {
  const seen: string[] = [];
  const brake = {
    beforeAuth: async (mac: string, ip: string | null) => {
      seen.push(`brake ${mac} ${ip}`);
    },
    afterDeauth: async (mac: string) => {
      seen.push(`unbrake ${mac}`);
    },
  };
  const counter = {
    beforeAuth: async (mac: string, ip: string | null) => {
      seen.push(`count ${mac} ${ip}`);
    },
    afterDeauth: async (mac: string) => {
      seen.push(`uncount ${mac}`);
    },
    afterRefusal: async (mac: string) => {
      seen.push(`refused ${mac}`);
    },
  };
  const table = new Map<string, string>([
    [A, '10.0.0.2'],
    [B, '10.0.0.3'],
  ]);
  const asked: Array<string | null> = [];
  const neighbour = async (mac: string, hint: string | null): Promise<string | null> => {
    asked.push(hint);
    return table.get(mac) ?? null;
  };
  const { file, valve } = setup({}, { flavour: 'opennds', brake, counter, neighbour });
  file.addClient(A, '10.0.0.2');
  assert.is(await valve.open(A, { downloadQuotaKiB: 100, dataBytes: 100 * 1024 }, '10.0.0.2'), 'opened');
  assert.equal(
    calls(file).map((c) => c.split(' ')[0]),
    ['auth'],
    'one portal call',
  );
  assert.equal(seen, [`brake ${A} 10.0.0.2`, `count ${A} 10.0.0.2`]);
  assert.equal(asked, ['10.0.0.2'], 'the address given is the hint');
  assert.is(valve.lastIp(A), '10.0.0.2');
  // B is in the table but the portal does not list it: the auth is refused, the lookup says unknown, the kernel's
  // side goes (without a deauth's word), and its next open looks it up first (one call a try).
  seen.length = 0;
  await rejectsWithCode(valve.open(B, { downloadQuotaKiB: 100, dataBytes: 100 * 1024 }), 'ERR_PORTAL_CLIENT_UNKNOWN');
  assert.equal(
    calls(file)
      .slice(1)
      .map((c) => c.split(' ')[0]),
    ['auth', 'json'],
  );
  assert.equal(seen, [`brake ${B} 10.0.0.3`, `count ${B} 10.0.0.3`, `unbrake ${B}`, `refused ${B}`]);
  await rejectsWithCode(valve.open(B, { downloadQuotaKiB: 100, dataBytes: 100 * 1024 }), 'ERR_PORTAL_CLIENT_UNKNOWN');
  assert.equal(
    calls(file)
      .slice(3)
      .map((c) => c.split(' ')[0]),
    ['json'],
  );
  // Listed now: looked up (it was unknown), then authed with the portal's address; after that the table serves again.
  file.addClient(B, '10.0.0.3');
  assert.is(await valve.open(B, { downloadQuotaKiB: 100, dataBytes: 100 * 1024 }), 'opened');
  assert.equal(
    calls(file)
      .slice(4)
      .map((c) => c.split(' ')[0]),
    ['json', 'auth'],
  );
  assert.is(await valve.close(B), 'closed');
  file.addClient(B, '10.0.0.3');
  assert.is(await valve.open(B, { downloadQuotaKiB: 100, dataBytes: 100 * 1024 }), 'opened');
  assert.equal(
    calls(file)
      .slice(7)
      .map((c) => c.split(' ')[0]),
    ['auth'],
  );
  // Not in the table (or ambiguous there): looked up as before.
  table.delete(A);
  assert.is(await valve.close(A), 'closed');
  file.addClient(A, '10.0.0.2');
  assert.is(await valve.open(A, { downloadQuotaKiB: 100, dataBytes: 100 * 1024 }), 'opened');
  assert.equal(
    calls(file)
      .slice(-2)
      .map((c) => c.split(' ')[0]),
    ['json', 'auth'],
  );
});

test('bad input is refused before any ndsctl call', async () => {
  const { file, valve } = setup();
  file.addClient(A, '10.0.0.2');
  await rejectsWithCode(valve.open('nope'), 'ERR_INVALID_MAC');
  await rejectsWithCode(valve.close('nope'), 'ERR_INVALID_MAC');
  await rejectsWithCode(valve.client('nope'), 'ERR_INVALID_MAC');
  await rejectsWithCode(valve.open(A, { custom: 'a,b' }), 'ERR_INVALID_ARGUMENT');
  await rejectsWithCode(valve.open(A, { custom: 'say "hi"' }), 'ERR_INVALID_ARGUMENT');
  await rejectsWithCode(valve.open(A, { sessionMinutes: 0 }), 'ERR_INVALID_ARGUMENT');
  await rejectsWithCode(valve.open(A, { downloadQuotaKiB: -1 }), 'ERR_INVALID_ARGUMENT');
  assert.is(file.read().model.get(A)?.state, 'Preauthenticated');
  assert.not.ok(calls(file).some((c) => c.startsWith('auth')));
});

test('close: Authenticated → closed (openNDS drops the client); again → not-found', async () => {
  const { file, valve } = setup();
  file.addClient(A, '10.0.0.2');
  await valve.open(A);
  assert.is(await valve.close(A), 'closed');
  assert.is(file.read().model.get(A), undefined);
  assert.is(await valve.client(A), null);
  assert.is(await valve.close(A), 'not-found');
});

test('snapshot: every client in one call', async () => {
  const { file, valve } = setup();
  file.addClient(A, '10.0.0.2');
  file.addClient(B, '10.0.0.3');
  await valve.open(B);
  file.addTraffic(B, 10_000, 2_000);
  const before = calls(file).length;
  const snap = await valve.snapshot();
  assert.is(calls(file).length, before + 1);
  assert.is(snap.flavour, 'opennds');
  assert.equal(
    snap.clients.map((c) => [c.mac, c.state, c.downloadBytes]),
    [
      [A, 'Preauthenticated', 0],
      [B, 'Authenticated', Math.floor(10_000 / 1024) * 1024],
    ],
  );
});

test('portal down → ERR_PORTAL_DOWN; busy portal is retried transparently', async () => {
  const { file, valve } = setup();
  file.addClient(A, '10.0.0.2');
  file.setKnobs({ busyCalls: 2 });
  assert.is(await valve.open(A), 'opened');
  file.setDown(true);
  await rejectsWithCode(valve.snapshot(), 'ERR_PORTAL_DOWN');
  await rejectsWithCode(valve.open(A), 'ERR_PORTAL_DOWN');
});

test(
  'nodogsplash: auth without arguments (it has no ' + 'safety net), close keeps the client Preauthenticated',
  async () => {
    const { file, valve } = setup({ config: { flavour: 'nodogsplash' } });
    file.addClient(A, '10.0.0.2');
    assert.is(await valve.open(A, { sessionMinutes: 10, downloadQuotaKiB: 100 }), 'opened');
    assert.is(valve.flavour, 'nodogsplash');
    assert.equal(calls(file), [`json ${A}`, `auth ${A}`]);
    assert.is((await valve.client(A))?.state, 'Authenticated');
    assert.is(await valve.open(A), 'already-open');
    assert.is(await valve.close(A), 'closed');
    assert.is((await valve.client(A))?.state, 'Preauthenticated');
    assert.is(await valve.close(A), 'not-found');
    assert.is((await valve.snapshot()).flavour, 'nodogsplash');
  },
);

/** openNDS's `json <mac>` for client A while Preauthenticated, and after its auth. */
function clientBeforeAndAfterAuth(): { preauth: string; authed: string } {
  const model = new PortalModel({}, { clock: { now: () => 1795221700_000 } });
  model.addClient(A, '10.0.0.2');
  const preauth = model.renderJson('opennds', A);
  model.auth(A);
  return { preauth, authed: model.renderJson('opennds', A) };
}

test('auth refused because the client changed meanwhile: re-checked, already-open', async () => {
  const { preauth, authed } = clientBeforeAndAfterAuth();
  const fake = fakeSpawn([
    { stdout: preauth },
    { code: 1, stdout: `Failed to authenticate client ${A}.\n` },
    { stdout: authed },
  ]);
  const valve = new Valve({ command: ['ndsctl'], spawn: fake.spawn });
  assert.is(await valve.open(A), 'already-open');
  assert.equal(
    fake.calls.map((c) => c[1]),
    ['json', 'auth', 'json'],
  );
});

test(
  'auth answered abnormally (exit 2): looked up; open → ' + 'opened, still Preauthenticated or no answer → the error',
  async () => {
    const { preauth, authed } = clientBeforeAndAfterAuth();
    const abnormal = { code: 2, stderr: 'ndsctl: Error: the portal sent an abnormal reply.\n' };
    const took = fakeSpawn([{ stdout: preauth }, abnormal, { stdout: authed }]);
    assert.is(await new Valve({ command: ['ndsctl'], spawn: took.spawn }).open(A), 'opened');
    assert.equal(
      took.calls.map((c) => c[1]),
      ['json', 'auth', 'json'],
    );
    const notTaken = fakeSpawn([{ stdout: preauth }, abnormal, { stdout: preauth }]);
    await rejectsWithCode(new Valve({ command: ['ndsctl'], spawn: notTaken.spawn }).open(A), 'ERR_NDSCTL_FAILED');
    const noAnswer = fakeSpawn([{ stdout: preauth }, abnormal, { code: 3, stderr: 'ndsctl: cannot connect\n' }]);
    await rejectsWithCode(new Valve({ command: ['ndsctl'], spawn: noAnswer.spawn }).open(A), 'ERR_PORTAL_AUTH_UNKNOWN');
  },
);

test('auth refused and the client gone → ERR_PORTAL_CLIENT_UNKNOWN', async () => {
  const model = new PortalModel({}, { clock: { now: () => 1795221700_000 } });
  model.addClient(A, '10.0.0.2');
  const token = model.get(A)!.token;
  // The auth and the look after it go by the token the lookup showed; the token not found, the MAC is asked.
  const fake = fakeSpawn([
    { stdout: model.renderJson('opennds', A) },
    { code: 1 },
    { stdout: '{}\n' },
    { stdout: '{}\n' },
  ]);
  await rejectsWithCode(new Valve({ command: ['ndsctl'], spawn: fake.spawn }).open(A), 'ERR_PORTAL_CLIENT_UNKNOWN');
  assert.equal(
    fake.calls.map((c) => c.slice(1, 3).join(' ')),
    [`json ${A}`, `auth ${token}`, `json ${token}`, `json ${A}`],
  );
});

test('openNdsAuthArgs: limits rounded up and capped, rates 0, joined length bounded', () => {
  assert.equal(openNdsAuthArgs(A, { sessionMinutes: 0.5, uploadQuotaKiB: 1, downloadQuotaKiB: 1e30 }), [
    'auth',
    A,
    '1',
    '0',
    '0',
    '1',
    String(UNLIMITED_QUOTA_KIB),
  ]);
  assert.equal(openNdsAuthArgs(A, { sessionMinutes: 1e12 })[2], String(UNLIMITED_SESSION_MINUTES));
  assert.is(openNdsAuthArgs(A, { custom: 'x'.repeat(100) }).length, 8);
  assert.throws(
    () => openNdsAuthArgs(A, { custom: 'x'.repeat(101) }),
    (e: unknown) => isSluiceError(e, 'ERR_INVALID_ARGUMENT'),
  );
  assert.throws(
    () => openNdsAuthArgs(A, { custom: 'tab\there' }),
    (e: unknown) => isSluiceError(e, 'ERR_INVALID_ARGUMENT'),
  );
  assert.throws(
    () => openNdsAuthArgs(A, { sessionMinutes: Number.NaN }),
    (e: unknown) => isSluiceError(e, 'ERR_INVALID_ARGUMENT'),
  );
});

test('a close the portal cannot make (down) closes IPv6 anyway; the rest waits for the retried close', async () => {
  const closed: string[] = [];
  const removed: string[] = [];
  const fake = fakeSpawn([{ code: 3, stderr: 'ndsctl: cannot connect to the portal\n' }]);
  const valve = new Valve({
    command: ['ndsctl'],
    spawn: fake.spawn,
    flavour: 'nodogsplash',
    maxAttempts: 1,
    ipv6: { ...alreadyOpen, open: async () => undefined, close: async (mac) => void closed.push(mac) },
    brake: { beforeAuth: async () => undefined, afterDeauth: async (mac) => void removed.push(mac) },
  });
  valves.push(valve);
  await rejectsWithCode(valve.close(A), 'ERR_PORTAL_DOWN');
  assert.equal(closed, [A], "the client's IPv6 is closed although the portal never answered");
  assert.equal(removed, [], 'the kernel quota stays until the gate is known closed');
});

test('the stop comes at once, not after an earlier portal call that hangs (the deauth waits its turn)', async () => {
  const stopped: string[] = [];
  const fake = fakeSpawn([{ hang: true }, { code: 0, stdout: 'Client deauthenticated.\n' }]);
  const valve = new Valve({
    command: ['ndsctl'],
    spawn: fake.spawn,
    flavour: 'nodogsplash',
    maxAttempts: 1,
    timeoutMs: 2000,
    ipv6: { ...alreadyOpen, open: async () => undefined, close: async (mac) => void stopped.push(mac) },
  });
  valves.push(valve);
  const hung = valve.snapshot().catch(() => undefined); // holds the portal's queue until its deadline
  await new Promise((r) => setTimeout(r, 50));
  const closing = valve.close(A).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(stopped, [A], 'stopped while the earlier call still holds the queue');
  await Promise.all([hung, closing]);
});

test('the client stays stopped until the portal answers the deauth, yes or no; released() ends it', async () => {
  const log: string[] = [];
  const fake = fakeSpawn([
    { code: 3, stderr: 'ndsctl: cannot connect to the portal\n' },
    { code: 1, stdout: 'Client not found.\n' },
    { code: 0, stdout: 'Client deauthenticated.\n' },
  ]);
  const valve = new Valve({
    command: ['ndsctl'],
    spawn: fake.spawn,
    flavour: 'nodogsplash',
    maxAttempts: 1,
    ipv6: {
      ...alreadyOpen,
      open: async () => undefined,
      close: async (mac) => void log.push(`stop ${mac}`),
      released: async (mac) => void log.push(`release ${mac}`),
    },
  });
  valves.push(valve);
  await rejectsWithCode(valve.close(A), 'ERR_PORTAL_DOWN');
  assert.equal(log, [`stop ${A}`], 'no answer: the stop holds');
  assert.is(await valve.close(A), 'not-found');
  assert.equal(log, [`stop ${A}`, `stop ${A}`, `release ${A}`], 'the portal has no gate open for it: released');
  log.length = 0;
  assert.is(await valve.close(A), 'closed');
  assert.equal(log, [`stop ${A}`, `release ${A}`]);
  log.length = 0;
  await valve.released(A);
  assert.equal(log, [`release ${A}`]);
});

test.run();
