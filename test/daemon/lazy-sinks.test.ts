// tier: peers; needs mosquitto
/**
 * The MQTT sink's and the hook's code (src/upstream/mqtt/, src/upstream/hook/, with the outbox they queue through) is
 * read only when their section is on (upstream/section-sink.ts), in chunks of their own: a daemon with both off never
 * loads them (docs/performance.md, "Idle memory"). Checked on a copy of dist/ without those chunks: with both off the
 * daemon starts, sells and reloads, never trying them; a reload that switches the hook on is answered with
 * ERR_MODULE_LOAD naming it and the daemon runs on; a start with mqtt on logs ERR_MODULE_LOAD naming the MQTT upstream
 * and runs without it. The whole dist/ with both off at start: a reload switches each on, no restart, and each sends.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Mosquitto } from '../peers/mosquitto.ts';
import { Subscriber } from '../upstream/mqtt-rig.ts';
import { BUNDLE, DaemonLab, ensureBuilt } from './harness.ts';

const DIST = join(BUNDLE, '..');
const SINKS = /^src\/upstream\/(mqtt\/sink|hook\/sink|outbox)\.ts$/;
const A = '02:00:00:00:3b:01';
const B = '02:00:00:00:3b:02';

/** The chunks (sluice-*.mjs) that hold the MQTT sink's, the hook's or the outbox's code, by the build's meta.json. */
function sinkChunks(): string[] {
  const meta = JSON.parse(readFileSync(join(DIST, 'meta.json'), 'utf8')) as Record<string, string[]>;
  return Object.entries(meta)
    .filter(([out, inputs]) => /^dist\/sluice-.*\.mjs$/.test(out) && inputs.some((i) => SINKS.test(i)))
    .map(([out]) => out.slice('dist/'.length));
}

const hookSection = (port: number): string => `
config hook 'hook'
\toption enabled '1'
\toption url 'http://127.0.0.1:${port}/hook'
\toption secret 'lazy-sinks-hook-secret-0123456789'
\toption timeout '2'
\toption backoff_max '1'
`;

const mqttSection = (url: string): string => `
config mqtt 'mqtt'
\toption enabled '1'
\toption url '${url}'
\toption keepalive '5'
`;

/** A daemon lab on a copy of dist/ without the sinks' chunks, both sections off unless `extra` says. */
async function withoutSinks(check: (lab: DaemonLab) => Promise<void>, extra = ''): Promise<void> {
  ensureBuilt();
  const copy = mkdtempSync(join(tmpdir(), 'sluice-nosinks-'));
  cpSync(DIST, copy, { recursive: true });
  for (const chunk of sinkChunks()) rmSync(join(copy, chunk));
  const lab = await DaemonLab.create({ bundle: join(copy, 'sluice.mjs'), pollInterval: 0.3, portalSocket: true });
  lab.writeConfig(extra);
  try {
    await check(lab);
  } finally {
    await lab.close();
    rmSync(copy, { recursive: true, force: true });
  }
}

const upstreamStats = async (lab: DaemonLab, name: string): Promise<Record<string, unknown>> =>
  ((await lab.call('stats')).upstream as Record<string, Record<string, unknown>>)[name]!;

/** A receiver of the hook's posts: their `event`s in order. */
async function receiver(): Promise<{ port: number; events: string[]; server: Server }> {
  const events: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      events.push(String((JSON.parse(Buffer.concat(chunks).toString()) as { event?: unknown }).event));
      res.writeHead(204).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, events, server };
}

test("the sinks' code is in chunks of its own, apart from the bundle's entry", () => {
  ensureBuilt();
  const chunks = sinkChunks();
  assert.ok(chunks.length > 0, 'no chunk holds the sinks');
  const entry = readFileSync(BUNDLE, 'utf8');
  for (const chunk of chunks) assert.not.ok(entry.includes(chunk), `sluice.mjs imports ${chunk}`);
});

test("mqtt and hook off, the sinks' chunks missing: the daemon starts, sells, reloads, never trying them", async () => {
  await withoutSinks(async (lab) => {
    lab.portal.addClient(A, '10.0.59.1');
    await lab.startDaemon();
    assert.is((await lab.callStatus('grant', { mac: A, seconds: 600 })).status, 0);
    await lab.waitFor(() => lab.clientState(A) === 'Authenticated', 30_000, 'gate open');
    assert.equal((await lab.call('reload')).problems, []);
    assert.is((await upstreamStats(lab, 'mqtt'))['state'], 'disabled');
    assert.is((await upstreamStats(lab, 'hook'))['state'], 'disabled');
    assert.not.match(lab.output, /ERR_MODULE_LOAD/);
    assert.is(lab.daemon?.exitCode, null, 'the daemon runs');
  });
});

test('the same copy: a reload switching the hook on is answered with ERR_MODULE_LOAD; the daemon runs on', async () => {
  await withoutSinks(async (lab) => {
    lab.portal.addClient(A, '10.0.59.1');
    await lab.startDaemon();
    lab.writeConfig(hookSection(59_999));
    const reply = await lab.call('reload');
    const problems = (reply.problems as Array<{ reason: string }>).map((p) => p.reason).join('\n');
    assert.match(problems, /ERR_MODULE_LOAD/);
    assert.match(problems, /the hook upstream: its code could not be loaded/);
    await lab.call('grant', { mac: A, seconds: 600 });
    await lab.waitFor(() => lab.clientState(A) === 'Authenticated', 30_000, 'gate open');
    assert.is(lab.daemon?.exitCode, null, 'the daemon runs');
  });
});

test('the same copy, mqtt on at start: ERR_MODULE_LOAD naming the MQTT upstream is logged, the rest runs', async () => {
  await withoutSinks(async (lab) => {
    lab.portal.addClient(A, '10.0.59.1');
    await lab.startDaemon();
    await lab.waitFor(() => /the MQTT upstream: its code could not be loaded/.test(lab.output), 10_000, 'logged');
    assert.match(lab.output, /upstream sink cannot start.*ERR_MODULE_LOAD/);
    await lab.call('grant', { mac: A, seconds: 600 });
    await lab.waitFor(() => lab.clientState(A) === 'Authenticated', 30_000, 'gate open');
    assert.is(lab.daemon?.exitCode, null, 'the daemon runs');
  }, mqttSection('mqtt://127.0.0.1:59999'));
});

test('the whole dist/, both off at start: a reload switches hook and mqtt on, no restart; each sends', async () => {
  ensureBuilt();
  const hook = await receiver();
  const broker = await Mosquitto.create();
  const sub = await Subscriber.connect(broker.url);
  const lab = await DaemonLab.create({ pollInterval: 0.3, portalSocket: true });
  try {
    lab.portal.addClient(A, '10.0.59.1');
    lab.portal.addClient(B, '10.0.59.2');
    await lab.startDaemon();
    await lab.call('grant', { mac: A, seconds: 600 });
    lab.writeConfig(hookSection(hook.port) + mqttSection(broker.url));
    assert.equal((await lab.call('reload')).problems, []);
    await lab.waitFor(async () => (await upstreamStats(lab, 'mqtt'))['state'] === 'ready', 20_000, 'mqtt connected');
    assert.is((await upstreamStats(lab, 'hook'))['state'], 'running');
    await lab.call('grant', { mac: B, seconds: 600 });
    await lab.waitFor(() => hook.events.includes('started'), 20_000, "the hook posts B's start");
    await lab.waitFor(
      () => sub.messages.some((m) => m.topic.endsWith('/session') && m.body['event'] === 'started'),
      20_000,
      "mqtt publishes B's start",
    );
    assert.not.match(lab.output, /ERR_MODULE_LOAD/);
  } finally {
    await lab.close();
    await sub.close();
    await broker.close();
    await new Promise<void>((r) => {
      hook.server.closeAllConnections();
      hook.server.close(() => r());
    });
  }
});

test.run();
