// tier: daemon
/**
 * With the real daemon and broker: `sessions` failed at ~2,400 sessions (status 9, no error body)
 * because the reply outgrew the ubus message limit. Now it pages (offset, limit; bounded by default) and filters by
 * state.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { JournalStore } from '../../src/sessions/journal.ts';
import { SessionManager } from '../../src/sessions/manager.ts';
import { DaemonLab } from './harness.ts';

const COUNT = 3000;
const macOf = (i: number): string =>
  `02:00:00:0f:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

test(`sessions at ${COUNT} sessions: every page fits, the pages cover every session once, state filters`, async () => {
  const lab = await DaemonLab.create({ portalSocket: true });
  try {
    // The state a busy hotspot has, written the way the daemon writes it, then the daemon started on it.
    const manager = await SessionManager.open({ store: new JournalStore({ dir: join(lab.dir, 'state') }) });
    for (let i = 0; i < COUNT; i++) {
      await manager.activate({
        mac: macOf(i),
        metric: 'seconds',
        allotment: 3600n,
        user: `guest-${i}`,
        payment: { method: 'grant', reference: `grant-fill-${i}`, amount: 0n, asset: '', at: Date.now() },
      });
    }
    for (let i = 0; i < 200; i++) await manager.end(manager.byMac(macOf(i))!.id, 'admin');
    await manager.close();
    await lab.startDaemon();

    const first = await lab.call('sessions');
    assert.is((first.sessions as unknown[]).length, 100, 'bounded by default');
    assert.is(first.total, COUNT);
    assert.is(first.more, true);

    const seen = new Set<string>();
    for (let offset = 0; ; offset += 500) {
      const page = await lab.call('sessions', { offset, limit: 500 });
      for (const s of page.sessions as Array<{ mac: string }>) seen.add(s.mac);
      if (!page.more) break;
    }
    assert.is(seen.size, COUNT, 'every session on exactly one page');

    const live = await lab.call('sessions', { state: 'LIVE', limit: 1 });
    assert.is(live.total, COUNT - 200);
    const ended = await lab.call('sessions', { state: 'ENDED', limit: 500 });
    assert.is(ended.total, 200);
    assert.is((ended.sessions as unknown[]).length, 200);
    assert.is(ended.more, false);
    const terminated = await lab.call('sessions', { state: 'TERMINATED', offset: 150, limit: 500 });
    assert.is((terminated.sessions as unknown[]).length, 50);

    for (const bad of [{ limit: 0 }, { limit: 501 }, { offset: -1 }, { state: 'SOME' }]) {
      const r = await lab.callStatus('sessions', bad);
      assert.is(r.status, 2, JSON.stringify(bad));
      assert.is((r.data as { error: { code: string } }).error.code, 'ERR_INVALID_ARGUMENT');
    }
  } finally {
    await lab.close();
  }
});

test.run();
