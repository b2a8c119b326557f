// tier: daemon
// The gate's calls by token on openNDS (portal/token-calls.ts), against the ndsctl stand-in: which
// calls are made, that a spent token falls back to the MAC, and that a token never opens another client's gate.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UNLIMITED_QUOTA_KIB, UNLIMITED_SESSION_MINUTES, Valve } from '../../src/portal/index.ts';
import { PortalModel } from '../../src/sim/index.ts';
import { PortalStateFile, readStateFile, writeStateFile } from '../peers/ndsctl-state.ts';
import { fakeSpawn } from './fake-spawn.ts';
import { spawn as nodeSpawn } from 'node:child_process';
import type { SpawnFn } from '../../src/portal/index.ts';
import { rejectsWithCode } from '../helpers/assert.ts';

const A = '02:00:00:00:0f:01';
const B = '02:00:00:00:0f:02';
const NET = `${UNLIMITED_SESSION_MINUTES} 0 0 ${UNLIMITED_QUOTA_KIB} ${UNLIMITED_QUOTA_KIB}`;
const files: PortalStateFile[] = [];
const valves: Valve[] = [];

/** An openNDS stand-in with A and B listed; the valve knows each client's address from the "neighbour table". */
function setup(
  config: Parameters<typeof PortalStateFile.create>[0] = {},
  opts: Partial<ConstructorParameters<typeof Valve>[0]> = {},
): { file: PortalStateFile; valve: Valve; token: (mac: string) => string } {
  const file = PortalStateFile.create(config);
  file.addClient(A, '10.0.0.2');
  file.addClient(B, '10.0.0.3');
  file.enableLog();
  files.push(file);
  const ips: Record<string, string> = { [A]: '10.0.0.2', [B]: '10.0.0.3' };
  const valve = new Valve({
    command: file.command,
    busyBackoffMs: 20,
    flavour: 'opennds',
    neighbour: async (mac) => ips[mac] ?? null,
    counter: { beforeAuth: async () => {}, afterDeauth: async () => {} },
    ...opts,
  });
  valves.push(valve);
  return { file, valve, token: (mac) => file.read().model.get(mac)!.token };
}

/** The ndsctl subcommands the stand-in answered, in order. */
function calls(file: PortalStateFile): string[] {
  return file.logLines().map((l) => l.split(' ').slice(4).join(' '));
}

/** The pairs a listing of the stand-in shows (mac, token, …), as the meter's worker hands them over. */
function listing(file: PortalStateFile): string[] {
  return file
    .read()
    .model.clients()
    .flatMap((c) => [c.mac, c.token]);
}

test.after(async () => {
  for (const v of valves) await v.destroy();
  for (const f of files) f.cleanup();
});

test("a token the meter's listing showed: the gate is one `auth <token>`, the deauth `deauth <token>`", async () => {
  const { file, valve, token } = setup();
  const t = token(A);
  valve.noteListing(listing(file), 'opennds', 700);
  assert.is(await valve.open(A), 'opened');
  assert.is(file.read().model.get(A)?.state, 'Authenticated');
  assert.is(file.read().model.get(B)?.state, 'Preauthenticated');
  assert.is(await valve.close(A), 'closed');
  assert.equal(calls(file), [`auth ${t} ${NET}`, `deauth ${t}`]);
  // openNDS drops a deauthed client and lists it again with a new token: the spent one is not used again.
  file.addClient(A, '10.0.0.2');
  assert.is(await valve.open(A), 'opened');
  assert.equal(calls(file).slice(2), [`auth ${A} ${NET}`]);
});

test('a spent token answers no: the auth goes by the MAC, and the portal opens the right client', async () => {
  const { file, valve } = setup();
  const pairs = listing(file);
  // The portal re-listed A (deauthed or forgotten and back) since that listing: A has a new token.
  file.update((m) => {
    m.remove(A);
    m.addClient(A, '10.0.0.2');
  });
  const spent = pairs[pairs.indexOf(A) + 1]!;
  valve.noteListing(pairs, 'opennds', 700);
  assert.is(await valve.open(A), 'opened');
  assert.equal(calls(file), [`auth ${spent} ${NET}`, `auth ${A} ${NET}`]);
  assert.is(file.read().model.get(A)?.state, 'Authenticated');
  // A no to a deauth by a spent token is asked again by MAC: the gate is shut either way.
  valve.noteListing([A, spent, B, file.read().model.get(B)!.token], 'opennds', 700);
  assert.is(await valve.close(A), 'closed');
  assert.equal(calls(file).slice(2), [`deauth ${spent}`, `deauth ${A}`]);
  assert.is(file.read().model.get(A), undefined, 'deauthed (openNDS drops it)');
});

test("a token the portal now gives another client is never taken for this one's", async () => {
  const { file, valve, token } = setup({}, { neighbour: async () => null });
  const tA = token(A);
  valve.noteListing(listing(file), 'opennds', 700);
  // Since that listing the portal re-listed A with a new token, and B now holds A's old one (the worst a spent token
  // can meet: openNDS's tokens are 32 random bits).
  const state = readStateFile(file.path);
  for (const c of state.portal.clients) {
    if (c.mac === A) c.token = 'a2a2a2a2';
    if (c.mac === B) c.token = tA;
  }
  writeStateFile(file.path, state);
  // No address from the neighbour table: the lookup comes first. By token it answers B: not A's answer, so A is
  // asked by MAC, and the auth goes by the token the portal shows for A now.
  assert.is(await valve.open(A), 'opened');
  assert.equal(calls(file), [`json ${tA}`, `json ${A}`, `auth a2a2a2a2 ${NET}`]);
  assert.is(file.read().model.get(A)?.state, 'Authenticated');
  assert.is(file.read().model.get(B)?.state, 'Preauthenticated', 'B untouched');
  // A listing that shows the old token beside B ties it to B: A's deauth goes by A's own.
  valve.noteListing([A, 'a2a2a2a2', B, tA], 'opennds', 700);
  assert.is(await valve.close(A), 'closed');
  assert.equal(calls(file).slice(3), [`deauth a2a2a2a2`]);
  assert.is(file.read().model.get(B)?.state, 'Preauthenticated');
});

test("snapshot() and lookups note the tokens; the meter's final reading goes by token too", async () => {
  const { file, valve, token } = setup();
  await valve.snapshot();
  assert.is(await valve.open(B), 'opened');
  assert.is((await valve.client(B))?.state, 'Authenticated');
  assert.equal(calls(file), ['json', `auth ${token(B)} ${NET}`, `json ${token(B)}`]);
});

test('a listing read before a deauth, handed over after it: the spent token never opens or shuts', async () => {
  const { file, valve, token } = setup();
  const before = listing(file); // the worker's listing, started before the deauth
  const spent = token(A);
  valve.noteListing(before, 'opennds', 700);
  assert.is(await valve.open(A), 'opened');
  assert.is(await valve.close(A), 'closed');
  valve.noteListing(before, 'opennds', 700); // ... and finished after it: A's spent token is back in the book
  // openNDS 9 dropped A at the deauth; A comes back with a new token and buys again.
  file.addClient(A, '10.0.0.2');
  assert.is(await valve.open(A), 'opened');
  assert.is(file.read().model.get(A)?.state, 'Authenticated');
  assert.is(file.read().model.get(B)?.state, 'Preauthenticated', 'B untouched');
  // The same listing once more before the close: a no by the spent token is never taken as shut.
  valve.noteListing(before, 'opennds', 700);
  assert.is(await valve.close(A), 'closed');
  assert.is(file.read().model.get(A), undefined, 'deauthed (openNDS drops it)');
  assert.equal(calls(file).slice(2), [`auth ${spent} ${NET}`, `auth ${A} ${NET}`, `deauth ${spent}`, `deauth ${A}`]);
});

test('an abnormal answer (exit 2) to an auth by token: the look after counts only if it names this MAC', async () => {
  const model = new PortalModel({}, { clock: { now: () => 1795221700_000 } });
  model.addClient(A, '10.0.0.2');
  model.addClient(B, '10.0.0.3');
  model.auth(B);
  const tB = model.get(B)!.token; // B holds the token the book still pairs with A
  const abnormal = { code: 2, stderr: 'ndsctl: Error: the portal sent an abnormal reply.\n' };
  const fake = fakeSpawn([
    abnormal,
    { stdout: model.renderJson('opennds', B) },
    { stdout: model.renderJson('opennds', A) },
  ]);
  const valve = new Valve({ command: ['ndsctl'], spawn: fake.spawn, flavour: 'opennds' });
  valves.push(valve);
  valve.noteListing([A, tB], 'opennds', 700);
  // B's Authenticated is not A's: A, asked by its MAC, is still Preauthenticated, so the auth did not take.
  await rejectsWithCode(valve.open(A, undefined, '10.0.0.2'), 'ERR_NDSCTL_FAILED');
  assert.equal(
    fake.calls.map((c) => c.slice(1, 3).join(' ')),
    [`auth ${tB}`, `json ${tB}`, `json ${A}`],
  );
});

test("the token openNDS's BinAuth kept at the auth: no listing, and the deauth is `deauth <token>`", async () => {
  const kept = new Map<string, string>();
  const { file, valve, token } = setup({}, { binauthTokens: async (mac) => kept.get(mac) });
  // No listing, an address from the neighbour table: the auth goes by MAC at once, and the BinAuth sees the token.
  assert.is(await valve.open(A), 'opened');
  const tA = token(A);
  kept.set(A, tA);
  assert.is(await valve.close(A), 'closed');
  assert.equal(calls(file), [`auth ${A} ${NET}`, `deauth ${tA}`]);
  assert.is(valve.callCounts()['by_token'], 1, 'stats.gates.portal_by_token counts it');
  assert.is(file.read().model.get(A), undefined, 'deauthed (openNDS drops it)');
  assert.is(file.read().model.get(B)?.state, 'Preauthenticated', 'B untouched');
});

test('a kept token the portal no longer holds answers no: the deauth goes by MAC, and the gate is shut', async () => {
  let kept: string | undefined;
  const { file, valve } = setup({}, { binauthTokens: async () => kept });
  assert.is(await valve.open(A), 'opened');
  kept = '0badf00d'; // the portal restarted since the BinAuth kept it
  assert.is(await valve.close(A), 'closed');
  assert.equal(calls(file), [`auth ${A} ${NET}`, 'deauth 0badf00d', `deauth ${A}`]);
  assert.is(file.read().model.get(A), undefined, 'deauthed (openNDS drops it)');
});

test("a kept token a listing showed beside another client is that client's: A goes by its MAC, B stays", async () => {
  let kept: string | undefined;
  const { file, valve, token } = setup({}, { binauthTokens: async () => kept });
  assert.is(await valve.open(A), 'opened');
  assert.is(await valve.open(B), 'opened');
  kept = token(B);
  valve.noteListing([B, token(B)], 'opennds', 700);
  assert.is(await valve.close(A), 'closed');
  assert.equal(calls(file).slice(2), [`deauth ${A}`]);
  assert.is(file.read().model.get(B)?.state, 'Authenticated', 'B still open');
});

test("an auth the portal did after its caller's timeout, tried again: one lookup by the BinAuth's token", async () => {
  let kept: string | undefined;
  let late = true;
  const hang = fakeSpawn([{ hang: true }]);
  let file: PortalStateFile | undefined;
  // A's first auth: the portal does it, and the BinAuth keeps its token, but the call never answers (a loaded
  // openNDS): the valve's caller hears ERR_NDSCTL_TIMEOUT.
  const spawn: SpawnFn = (cmd, args, options) => {
    if (!late || !args.includes('auth') || !args.includes(A)) return nodeSpawn(cmd, args, options);
    late = false;
    file!.update((m) => void m.auth(A));
    kept = file!.read().model.get(A)!.token;
    return hang.spawn(cmd, args, options);
  };
  const made = setup(
    {},
    // A deadline far above a stand-in's start on a loaded machine: only the hung auth reaches it.
    { binauthTokens: async (mac) => (mac === A ? kept : undefined), spawn, timeoutMs: 5000, timeoutBackoffMs: 1 },
  );
  file = made.file;
  const { valve } = made;
  await rejectsWithCode(valve.open(A), 'ERR_NDSCTL_TIMEOUT');
  assert.is(hang.kills, 1);
  assert.is(await valve.open(A), 'already-open');
  assert.equal(calls(file), [`json ${kept}`], 'no auth by MAC answered no, no lookup by MAC');
  // A client whose auth never timed out has its auth at once.
  assert.is(await valve.open(B), 'opened');
  assert.equal(calls(file).slice(1), [`auth ${B} ${NET}`]);
});

test("a kept token, no auth of this client timed out: maybe another client's, the auth goes at once", async () => {
  // The device came back on a new address: openNDS lists it as a second client of the same MAC, Preauthenticated,
  // while the first (whose token the BinAuth kept) is still Authenticated. Its state says nothing about this one.
  const { file, valve } = setup({}, { binauthTokens: async (mac) => (mac === A ? '0a1b2c3d' : undefined) });
  assert.is(await valve.open(A), 'opened');
  assert.equal(calls(file), [`auth ${A} ${NET}`], 'no lookup by the kept token');
  assert.is(file.read().model.get(A)?.state, 'Authenticated');
});

test("gates waiting whose tokens are unknown: the portal's status first, then each auth by token", async () => {
  const more = ['02:00:00:00:0f:03', '02:00:00:00:0f:04', '02:00:00:00:0f:05'];
  const ips = new Map([A, B, ...more].map((m, i) => [m, `10.0.0.${2 + i}`]));
  const { file, valve, token } = setup(
    {},
    { neighbour: async (mac) => ips.get(mac) ?? null, portalVersion: async () => '10.3.1' },
  );
  for (const m of more) file.addClient(m, ips.get(m)!);
  // The first goes alone, by MAC; the other four wait behind it: a burst, and no status timed yet.
  const macs = [A, B, ...more];
  const tokens = macs.map(token);
  assert.equal(
    await Promise.all(macs.map((m) => valve.open(m))),
    macs.map(() => 'opened'),
  );
  assert.equal(calls(file), [`auth ${A} ${NET}`, 'status', ...tokens.slice(1).map((t) => `auth ${t} ${NET}`)]);
  for (const m of macs) assert.is(file.read().model.get(m)?.state, 'Authenticated');
  assert.is(valve.callCounts()['by_token'], 4);
});

test('openNDS 9.x is never asked its status (its gateway check may make it exit there): auths by MAC', async () => {
  const more = ['02:00:00:00:0f:03', '02:00:00:00:0f:04', '02:00:00:00:0f:05'];
  const ips = new Map([A, B, ...more].map((m, i) => [m, `10.0.0.${2 + i}`]));
  const { file, valve } = setup(
    {},
    { neighbour: async (mac) => ips.get(mac) ?? null, portalVersion: async () => '9.10.0' },
  );
  for (const m of more) file.addClient(m, ips.get(m)!);
  const macs = [A, B, ...more];
  assert.equal(
    await Promise.all(macs.map((m) => valve.open(m))),
    macs.map(() => 'opened'),
  );
  assert.equal(
    calls(file),
    macs.map((m) => `auth ${m} ${NET}`),
  );
});

test('nodogsplash: by MAC always (its ndsctl finds a MAC without hashing every client)', async () => {
  const { file, valve } = setup(
    { config: { flavour: 'nodogsplash' } },
    { flavour: 'nodogsplash', binauthTokens: async () => '0a1b2c3d' },
  );
  valve.noteListing(listing(file), 'opennds', 700);
  await valve.snapshot();
  assert.is(await valve.open(A), 'opened');
  assert.is(await valve.close(A), 'closed');
  assert.equal(calls(file), ['json', `json ${A}`, `auth ${A}`, `deauth ${A}`]);
});

test.run();
