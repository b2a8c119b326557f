// tier: peers; needs mosquitto mosquitto_sub python3
/**
 * The code examples of docs/mqtt.md, taken from the doc as it is and run against a real mosquitto and the real sink:
 * the Python consumer (behind the doc's own mosquitto_sub line), the Node consumer, and the Python command signer
 * with the doc's mosquitto_pub line. So the doc cannot drift from the payloads.
 * Python is Debian's /usr/bin/python3 with python3-msgpack (.ci/run installs it).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Mosquitto } from '../peers/mosquitto.ts';
import { MqttSink } from '../../src/upstream/mqtt/sink.ts';
import { mqttConfig } from './mqtt-config.ts';
import { fakeSession, recordingLog, rows, Subscriber, tempDir, usageEvent } from './mqtt-rig.ts';
import { until } from '../helpers/until.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const DOC = readFileSync(join(ROOT, 'docs/mqtt.md'), 'utf8');
const PYTHON = '/usr/bin/python3';

/** The first fenced block of `lang` after the line that starts with `after`. */
function example(after: string, lang: string): string {
  const from = DOC.indexOf(`\n${after}`);
  assert.ok(from >= 0, `docs/mqtt.md has no line starting with ${after}`);
  const open = DOC.indexOf(`\n\`\`\`${lang}\n`, from);
  const close = DOC.indexOf('\n```', open + 4);
  assert.ok(open >= 0 && close > open, `no ${lang} block after ${after}`);
  return DOC.slice(open + lang.length + 5, close + 1);
}

class Output {
  text = '';
  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => {
      this.text += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.text += d.toString();
    });
  }
  lines(): string[] {
    return this.text.split('\n').filter((l) => l !== '');
  }
}

test(
  'the Python and Node consumers of docs/mqtt.md print what the sink published; its Python signer makes a ' +
    'command the router runs',
  async () => {
    assert.is(
      spawnSync(PYTHON, ['-c', 'import msgpack']).status,
      0,
      'python3-msgpack (Debian) is needed: apt-get install python3-msgpack',
    );
    const dir = mkdtempSync(join(tmpdir(), 'sluice-mqtt-docs-'));
    const stateDir = tempDir();
    const broker = await Mosquitto.create();
    const children: ChildProcess[] = [];
    const secret = 'docs-example-secret-0123';
    const ran: Array<[string, Record<string, unknown>]> = [];
    const sink = new MqttSink(mqttConfig(broker.url, { commands: true, commandSecret: secret }), {
      log: recordingLog([]),
      routerId: 'router1',
      stateDir,
      backoff: { minMs: 100, maxMs: 400 },
      command: async (name, args) => {
        ran.push([name, args]);
        return { session: { state: 'TERMINATED' } };
      },
    });
    const sub = await Subscriber.connect(broker.url);
    try {
      await sink.start();
      await sub.waitFor(() => sub.on('status').some((s) => s.body['online'] === true), 10_000, 'online status');

      // The Python consumer behind the mosquitto_sub line of its own first comment, pointed at the test broker.
      const python = example('Python (Debian', 'python');
      writeFileSync(join(dir, 'consume.py'), python);
      const pipeline = /^# (mosquitto_sub .*) \| python3 consume\.py$/m.exec(python);
      assert.ok(pipeline, 'the Python example names its mosquitto_sub line');
      const sh = `${pipeline[1]!.replace('-h BROKER', `-h 127.0.0.1 -p ${broker.port}`)} | ${PYTHON} -u consume.py`;
      const py = new Output(
        spawn('sh', ['-c', `exec ${sh}`], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true }),
      );
      children.push(py.child);
      // The Node consumer, with this repository's mqtt and msgpackr (what `npm install mqtt msgpackr` gives).
      symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
      writeFileSync(join(dir, 'consume.mjs'), example('Node (', 'js'));
      const js = new Output(
        spawn(process.execPath, ['consume.mjs'], {
          cwd: dir,
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, BROKER: broker.url },
        }),
      );
      children.push(js.child);
      // Both print the retained status once subscribed.
      await until(
        () => py.lines().some((l) => l.endsWith('status online ')),
        10_000,
        () => `Python consumer subscribed\n${py.text}`,
        50,
      );
      await until(
        () => js.lines().includes('sluice/router1/status status online'),
        10_000,
        () => `Node consumer subscribed\n${js.text}`,
        50,
      );

      // A session with a user, one past 2^32 bytes (a uint64 in msgpack), one without a user.
      const a = fakeSession({ user: 'alice', allotment: 10n ** 12n });
      const b = fakeSession();
      sink.onEvent({ type: 'started', at: Date.now(), session: a });
      sink.onEvent(usageEvent([a, b], 1000));
      sink.onEvent(usageEvent([a], 5_000_000_000));
      // A tier changed by a CoA (upload lifted: nil), then the end.
      sink.onEvent({
        type: 'rates',
        at: Date.now(),
        session: { ...a, rates: { downBps: 8_000_000, upBps: null } },
        previous: { downBps: 2_000_000, upBps: 1_000_000 },
        by: 'coa',
      });
      sink.onEvent({
        type: 'ended',
        at: Date.now(),
        session: { ...b, state: 'TERMINATED', endCause: 'admin', endedAt: Date.now() },
      });
      await sub.waitFor(
        () => sub.on('session').length === 3 && sub.on('usage').length === 2,
        10_000,
        'what the sink published',
      );
      const published = sub.messages
        .filter((m) => /\/(usage|session)$/.test(m.topic))
        .sort((x, y) => (x.body['seq'] as number) - (y.body['seq'] as number));
      const wantPy: string[] = [];
      const wantJs: string[] = [];
      for (const m of published) {
        const seq = m.body['seq'] as number;
        if (m.body['type'] === 'usage') {
          for (const r of rows(m.body)) {
            wantPy.push(
              `router1 ${seq} ${r['id']} ${r['mac']} up ${r['up']} down ${r['down']} used ${r['used']} ` +
                `left ${r['remaining']}`,
            );
            wantJs.push(`router1 ${seq} ${r['id']} ${r['mac']} ${r['up']} ${r['down']} ${r['used']} ${r['remaining']}`);
          }
        } else if (m.body['event'] === 'rates') {
          const s = m.body['session'] as Record<string, unknown>;
          wantPy.push(
            `router1 ${seq} rates ${s['mac']} down ${s['rate_down']} up ${s['rate_up'] ?? 'None'} by ${m.body['by']}`,
          );
          wantJs.push(`router1 ${seq} rates ${s['mac']} ${s['rate_down']} ${s['rate_up']} ${m.body['by']}`);
        } else {
          const s = m.body['session'] as Record<string, unknown>;
          wantPy.push(`router1 ${seq} ${m.body['event']} ${s['mac']} ${s['state']} ${s['cause'] ?? 'None'}`);
          wantJs.push(`sluice/router1/session session ${m.body['event']}`);
        }
      }
      assert.ok(
        wantPy.some((l) => l.includes(' used 5000001000 ')),
        'a figure past 2^32 is in the reports',
      );
      assert.ok(
        wantPy.some((l) => / rates \S+ down 8000000 up None by coa$/.test(l)),
        'the rates event, its lifted direction as None',
      );
      const after = (lines: string[]) => lines.filter((l) => !l.includes('status') && !l.includes('online'));
      await until(
        () => after(py.lines()).length >= wantPy.length,
        10_000,
        () => `Python consumer output\n${py.text}`,
        50,
      );
      await until(
        () => after(js.lines()).length >= wantJs.length,
        10_000,
        () => `Node consumer output\n${js.text}`,
        50,
      );
      assert.equal(after(py.lines()), wantPy);
      assert.equal(after(js.lines()), wantJs);

      // The signer: its output published with the doc's mosquitto_pub line runs a terminate, and the reply says ok.
      writeFileSync(join(dir, 'sign.py'), example('Signing in Python', 'python'));
      const signed = spawnSync(PYTHON, ['sign.py', secret, 'aa:bb:cc:dd:ee:ff'], { cwd: dir, encoding: 'utf8' });
      assert.is(signed.status, 0, signed.stderr);
      const pub = /^(mosquitto_pub .*) -m "\$\(python3 sign\.py/m.exec(DOC);
      assert.ok(pub, 'docs/mqtt.md has the mosquitto_pub line');
      const args = pub[1]!.replace('-h broker', `-h 127.0.0.1 -p ${broker.port}`).split(' ').slice(1);
      const sent = spawnSync('mosquitto_pub', [...args, '-m', signed.stdout.trim()], { encoding: 'utf8' });
      assert.is(sent.status, 0, sent.stderr);
      await sub.waitFor(() => sub.on('reply').length === 1, 10_000, 'the reply to the signed command');
      assert.equal(ran, [['terminate', { mac: 'aa:bb:cc:dd:ee:ff' }]]);
      assert.equal(
        [sub.on('reply')[0]!.body['ok'], sub.on('reply')[0]!.body['cmd'], sub.on('reply')[0]!.body['id']],
        [true, 'terminate', 'req-1'],
      );
    } finally {
      for (const c of children) {
        try {
          process.kill(c === children[0] ? -c.pid! : c.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await sub.close();
      await sink.close();
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
      rmSync(stateDir, { recursive: true, force: true });
    }
  },
);

test.run();
