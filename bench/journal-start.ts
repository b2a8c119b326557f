// `npm run bench -- journal-start [--sessions N] [--starts R] [--dir D]`
// The session journal's start as the daemon makes it (src/sessions/journal.ts load, then close): N sessions (default
// 1000) in the snapshot and one in the journal, started R times (default 200) on the same files, clean, and with a bit
// flipped in a snapshot record (the start reads past it, keeps a copy and compacts it away). Per start: wall, the
// process's CPU (its threads and libuv's pool alike) and the file system requests of the thread pool (counted once,
// by async_hooks). D: where the state dir is made (default the temp dir; /dev/shm leaves out a disk's fsyncs).
import { createHook } from 'node:async_hooks';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { JournalStore } from '../src/sessions/journal.ts';
import { makeSession, openRecord } from '../test/sessions/store-suite.ts';

export default async function journalStart(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { sessions: { type: 'string' }, starts: { type: 'string' }, dir: { type: 'string' } },
  });
  const n = Number(values.sessions ?? 1000);
  const starts = Number(values.starts ?? 200);
  const dir = mkdtempSync(join(values.dir ?? tmpdir(), 'sluice-journal-start-'));
  try {
    const first = new JournalStore({ dir });
    await first.load();
    const records = Array.from({ length: n }, () =>
      openRecord(makeSession({ metric: 'seconds', allotment: 60n, expiresAt: 1_000_060_000 })),
    );
    for (let i = 0; i < n; i += 100) await first.append(records.slice(i, i + 100));
    await first.compact(1_000_000_000);
    await first.append([openRecord(makeSession())]);
    await first.close();
    const files = new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
    const putBack = (): void => {
      for (const f of readdirSync(dir)) if (!files.has(f)) rmSync(join(dir, f), { recursive: true });
      for (const [f, bytes] of files) writeFileSync(join(dir, f), bytes);
    };
    let requests = 0;
    const hook = createHook({
      init: (_id, type) => {
        if (type === 'FSREQPROMISE' || type === 'FSREQCALLBACK') requests++;
      },
    });
    const start = async (): Promise<number> => {
      const store = new JournalStore({ dir });
      const held = (await store.load()).sessions.size;
      await store.close();
      return held;
    };
    const cases: Array<[string, () => void]> = [
      ['clean', () => undefined],
      [
        'a bit flipped in the snapshot',
        () => {
          const snapshot = Buffer.from(files.get('sessions.snapshot')!);
          snapshot[300]! ^= 4;
          writeFileSync(join(dir, 'sessions.snapshot'), snapshot);
        },
      ],
    ];
    console.log(`journal-start: ${n} sessions, ${starts} starts each, in ${values.dir ?? tmpdir()}`);
    for (const [name, harm] of cases) {
      putBack();
      harm();
      requests = 0;
      hook.enable();
      const held = await start();
      hook.disable();
      const counted = requests;
      let wall = 0;
      let cpu = 0;
      for (let r = 0; r < starts; r++) {
        putBack();
        harm();
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await start();
        wall += performance.now() - t0;
        const c = process.cpuUsage(c0);
        cpu += (c.user + c.system) / 1000;
      }
      console.log(
        `  ${name}: ${held} sessions held; per start ${(wall / starts).toFixed(2)} ms wall, ` +
          `${(cpu / starts).toFixed(2)} ms CPU, ${counted} requests of the thread pool (load and close)`,
      );
    }
    console.log(
      `  load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} (2 cores, shared)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
