// tier: daemon
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UbusBroker, runUbusd } from '../../src/ubus/broker/index.ts';
import { MsgType } from '../../src/ubus/codec/index.ts';
import { RawClient } from './broker-helpers.ts';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: (l: string) => out.push(l), stderr: (l: string) => err.push(l) } };
}

test('bad arguments → 2, -h → 0', async () => {
  const c = capture();
  assert.is(await runUbusd(['--bogus'], c.io), 2);
  assert.match(c.err.join('\n'), /Usage: sluice ubusd/);
  assert.is(await runUbusd(['-h'], capture().io), 0);
});

test('runs on -s <path> (creating the directory, replacing a stale socket), serves, stops cleanly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-ubusd-'));
  try {
    const path = join(dir, 'run', 'ubus', 'ubus.sock');
    // A stale socket: its listener was killed without a chance to unlink it.
    const stale =
      `require('fs').mkdirSync(${JSON.stringify(join(dir, 'run', 'ubus'))},{recursive:true});` +
      `require('net').createServer().listen(${JSON.stringify(path)},()=>process.kill(process.pid,'SIGKILL'))`;
    spawnSync(process.execPath, ['-e', stale]);
    assert.ok(existsSync(path), 'stale socket file exists');
    let stop!: () => void;
    const stopSignal = new Promise<void>((r) => (stop = r));
    const c = capture();
    const done = runUbusd(['-s', path], { ...c.io, stopSignal });
    let client: RawClient | undefined;
    for (let i = 0; i < 200 && !client; i++) {
      try {
        client = await RawClient.connect(path);
      } catch {
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    assert.ok(client, 'connected');
    assert.is((await client!.request(MsgType.PING, {})).status.attrs.status, 0);
    client!.close();
    stop();
    assert.is(await done, 0);
    assert.equal(c.out, [`sluice ubusd: listening on ${path}`]);
    assert.not.ok(existsSync(path), 'socket file removed on stop');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a live broker or a non-socket file at the path is never replaced', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-ubusd-'));
  try {
    const path = join(dir, 'ubus.sock');
    const first = await UbusBroker.listen({ socketPath: path });
    let code = '';
    try {
      await UbusBroker.listen({ socketPath: path });
    } catch (e) {
      code = (e as { code: string }).code;
    }
    assert.is(code, 'ERR_UBUS_BROKER_LISTEN');
    await first.close();
    const file = join(dir, 'plain');
    writeFileSync(file, 'keep me');
    const c = capture();
    assert.is(await runUbusd(['-s', file], { ...c.io, stopSignal: Promise.resolve() }), 1);
    assert.ok(existsSync(file));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
