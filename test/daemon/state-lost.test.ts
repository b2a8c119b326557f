// tier: daemon
/**
 * With the real daemon binary: a zero-filled state_dir used to start with 0 sessions and rewrite the
 * journal away. Now the start fails with ERR_STATE_LOST and exit 1 (procd gives up after its retries) and leaves the
 * files as they were; `sluice daemon --reset-state` is the operator's way to start anyway, with a `.corrupt` copy kept.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUNDLE, DaemonLab } from './harness.ts';

function runToExit(lab: DaemonLab, timeoutMs = 30_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BUNDLE, 'daemon', '--config', lab.configPath, '--ubus-socket', lab.socket], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`daemon still running after ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const stateFiles = (dir: string): Record<string, string> =>
  Object.fromEntries(
    readdirSync(dir)
      .filter((n) => n.startsWith('sessions.'))
      .sort()
      .map((n) => [n, readFileSync(join(dir, n)).toString('base64')]),
  );

test(
  'zero-filled state files: the daemon exits 1 with ' + 'ERR_STATE_LOST and changes nothing; --reset-state starts it',
  async () => {
    const lab = await DaemonLab.create({ portalSocket: true });
    try {
      await lab.startDaemon();
      for (let i = 1; i <= 5; i++) await lab.call('grant', { mac: `02:00:00:00:0f:0${i}`, seconds: 600 });
      await lab.stopDaemon('SIGKILL');
      const state = join(lab.dir, 'state');
      for (const name of readdirSync(state).filter((n) => n.startsWith('sessions.'))) {
        writeFileSync(join(state, name), Buffer.alloc(readFileSync(join(state, name)).length));
      }
      const before = stateFiles(state);
      const refused = await runToExit(lab);
      assert.is(refused.code, 1, refused.output);
      assert.match(refused.output, /ERR_STATE_LOST/);
      assert.match(refused.output, /--reset-state/, 'the log says what the operator can do');
      assert.equal(stateFiles(state), before, 'the refused start left the files as they were');

      await lab.startDaemon(['--reset-state']);
      assert.match(lab.output, /ERR_STATE_RESET/);
      assert.ok(
        readdirSync(state).some((n) => n.endsWith('.corrupt')),
        'a copy of the damaged files is kept',
      );
      const r = await lab.call('grant', { mac: '02:00:00:00:0f:09', seconds: 60 });
      assert.ok(r, 'it serves');
    } finally {
      await lab.close();
    }
  },
);

test(
  'a deleted journal (the daemon killed -9, then its journal removed): exit 1 with ERR_STATE_LOST, nothing ' +
    'changed',
  async () => {
    // The daemon started with 0 sessions, every paid session gone without a word.
    const lab = await DaemonLab.create({ portalSocket: true });
    try {
      await lab.startDaemon();
      for (let i = 1; i <= 3; i++) await lab.call('grant', { mac: `02:00:00:00:0e:0${i}`, seconds: 600 });
      await lab.stopDaemon('SIGKILL');
      const state = join(lab.dir, 'state');
      for (const name of readdirSync(state).filter((n) => /^sessions\.\d+\.journal$/.test(n)))
        rmSync(join(state, name));
      const before = stateFiles(state);
      const refused = await runToExit(lab);
      assert.is(refused.code, 1, refused.output);
      assert.match(refused.output, /ERR_STATE_LOST/);
      assert.match(refused.output, /journal is missing/);
      assert.equal(stateFiles(state), before, 'the refused start left the files as they were');
    } finally {
      await lab.close();
    }
  },
);

test(
  'a bit flip in the journal header (60 sessions, killed -9): the daemon starts with all 60, the damage logged ' +
    'and in stats',
  async () => {
    // This start was refused with ERR_STATE_LOST ("the records since the last compaction are gone")
    // although every record was intact; a router metered nothing until an operator ran --reset-state.
    const lab = await DaemonLab.create({ portalSocket: true });
    try {
      await lab.startDaemon();
      const macs = Array.from({ length: 60 }, (_, i) => `02:00:00:00:1d:${i.toString(16).padStart(2, '0')}`);
      for (const mac of macs) await lab.call('grant', { mac, seconds: 3600 });
      await lab.stopDaemon('SIGKILL');
      const state = join(lab.dir, 'state');
      const name = readdirSync(state).find((n) => /^sessions\.\d+\.journal$/.test(n))!;
      const bytes = readFileSync(join(state, name));
      const at = bytes.indexOf('"gen"') + 2;
      assert.ok(at > 2 && at < bytes.indexOf(0x0a), 'the flip is in the header line');
      bytes[at] = bytes[at]! ^ 1;
      writeFileSync(join(state, name), bytes);

      await lab.startDaemon();
      assert.not.match(lab.output, /ERR_STATE_LOST/);
      assert.match(lab.output, /ERR_JOURNAL_CORRUPT[^\n]*header is damaged in place/);
      const listed = await lab.call('sessions', { limit: 100 });
      assert.is(listed.total, 60, 'every session is back');
      const journal = (await lab.call('stats')).journal as Record<string, Record<string, number>>;
      assert.is(journal.damageAtStart!.headers, 1, JSON.stringify(journal));
      assert.ok(readdirSync(state).includes(`${name}.corrupt`), 'a copy of the damaged journal is kept');
      await lab.reconnectClient();
    } finally {
      await lab.close();
    }
  },
);

test.run();
