// tier: fast
/**
 * Corrupted state files. What broke: a bit flip in the last complete record was cut as a torn write
 * with no copy kept (a top-up lost without trace); a zero-filled journal was truncated to 0 bytes (0 of 60 sessions);
 * 4 KiB zeroed in the middle lost 10 sessions while the log said one corrupt record; a zero-filled or deleted snapshot
 * started with 0 sessions and deleted the journal. Now: evidence is copied before anything is rewritten, the reader
 * resynchronises on the record framing, and a start that would come up empty-handed (or without its snapshot) is
 * refused with ERR_STATE_LOST, changing nothing, unless the operator asks for it (resetState / --reset-state).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { JournalStore } from '../../src/sessions/journal.ts';
import type { Session } from '../../src/sessions/model.ts';
import { isSluiceError } from '../../src/errors.ts';
import { damagedTables } from '../../src/storage/index.ts';
import { makeSession, openRecord } from './store-suite.ts';
import { tempDirs } from '../helpers/temp.ts';

const tempDir = tempDirs('sluice-corrupt-', test.after);
const journalName = (dir: string): string => readdirSync(dir).find((n) => /^sessions\.\d+\.journal$/.test(n))!;

async function loadAt(dir: string, resetState = false) {
  const store = new JournalStore({ dir, ...(resetState && { resetState }) });
  const loaded = await store.load();
  return { store, loaded };
}

/** A state_dir with `n` sessions, one record each, optionally compacted into the snapshot. */
async function withSessions(n: number, compacted: boolean): Promise<{ dir: string; sessions: Session[] }> {
  const dir = tempDir();
  const { store } = await loadAt(dir);
  const sessions = Array.from({ length: n }, () => makeSession());
  for (const s of sessions) await store.append([openRecord(s)]);
  if (compacted) {
    await store.compact(Date.now());
    // A record after the snapshot, so the new journal is not empty.
    await store.append([
      {
        t: 'usage',
        at: Date.now(),
        entries: sessions.slice(0, 3).map((s) => [s.id, 7, 7] as [string, number, number]),
      },
    ]);
  }
  await store.close();
  return { dir, sessions };
}

/** Every file in dir with its bytes: a refused start must leave exactly this. */
function files(dir: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir)
      .filter((n) => n !== 'sluice.lock')
      .sort()
      .map((n) => [n, readFileSync(join(dir, n)).toString('base64')]),
  );
}

async function refusedWithStateLost(dir: string): Promise<void> {
  const before = files(dir);
  const store = new JournalStore({ dir });
  let code: string | undefined;
  try {
    await store.load();
  } catch (err) {
    code = isSluiceError(err) ? err.code : String(err);
  }
  await store.close();
  assert.is(code, 'ERR_STATE_LOST');
  assert.equal(files(dir), before, 'a refused start changes nothing');
}

test(
  'a bit flip in the last complete record is corruption, ' + 'not a torn write: reported, and a .corrupt copy kept',
  async () => {
    const { dir, sessions } = await withSessions(3, false);
    const name = journalName(dir);
    const text = readFileSync(join(dir, name), 'utf8');
    const last = text.lastIndexOf('\n', text.length - 2) + 1;
    const flip = last + 40;
    const damaged = text.slice(0, flip) + (text[flip] === '1' ? '2' : '1') + text.slice(flip + 1);
    writeFileSync(join(dir, name), damaged);
    const { store, loaded } = await loadAt(dir);
    assert.not.ok(
      loaded.warnings.some((w) => w.code === 'ERR_JOURNAL_TORN'),
      'not mistaken for a torn write',
    );
    assert.ok(loaded.warnings.some((w) => w.code === 'ERR_JOURNAL_CORRUPT'));
    assert.is(readFileSync(join(dir, `${name}.corrupt`), 'utf8'), damaged, 'the damaged file is kept byte for byte');
    assert.ok(loaded.sessions.has(sessions[0]!.id) && loaded.sessions.has(sessions[1]!.id));
    await store.close();
  },
);

test(
  'a zero-filled journal (60 sessions) is refused with ERR_STATE_LOST, nothing changed; reset-state starts, a ' +
    'copy kept',
  async () => {
    const { dir } = await withSessions(60, false);
    const name = journalName(dir);
    const size = readFileSync(join(dir, name)).length;
    writeFileSync(join(dir, name), Buffer.alloc(size));
    await refusedWithStateLost(dir);
    const { store, loaded } = await loadAt(dir, true);
    assert.is(loaded.sessions.size, 0);
    assert.ok(loaded.warnings.some((w) => w.code === 'ERR_STATE_RESET'));
    assert.equal(
      readFileSync(join(dir, `${name}.corrupt`)),
      Buffer.alloc(size),
      'the zeroed file is kept, not truncated away',
    );
    await store.close();
    const again = await loadAt(dir);
    assert.equal(again.loaded.warnings, [], 'after the reset the state is clean');
    await again.store.close();
  },
);

test(
  '4 KiB zeroed in the middle: every record outside the zeroes is kept, the loss is counted in bytes, not "one ' +
    'record"',
  async () => {
    const { dir, sessions } = await withSessions(60, false);
    const name = journalName(dir);
    const buf = readFileSync(join(dir, name));
    const from = Math.floor(buf.length / 2);
    buf.fill(0, from, from + 4096);
    writeFileSync(join(dir, name), buf);
    // What a perfect reader could still get: every line untouched by the zeroes.
    const intact = sessions.filter((s) => {
      const at = buf.indexOf(s.id);
      const lineStart = buf.lastIndexOf(0x0a, at) + 1;
      const lineEnd = buf.indexOf(0x0a, at);
      return at !== -1 && lineEnd !== -1 && (lineEnd < from || lineStart >= from + 4096);
    });
    const { store, loaded } = await loadAt(dir);
    assert.is(loaded.sessions.size, intact.length, 'exactly the untouched records are read back');
    const warning = loaded.warnings.find((w) => w.code === 'ERR_JOURNAL_CORRUPT' && /unreadable/.test(w.message));
    assert.ok(warning, 'damage reported');
    const lost = (warning!.details as { lostBytes: number }).lostBytes;
    assert.ok(lost >= 4096, `the unreadable bytes are counted: ${lost}`);
    assert.ok(readdirSync(dir).includes(`${name}.corrupt`));
    await store.close();
  },
);

test('a lost newline joins two records: resync on the framing keeps both', async () => {
  const { dir, sessions } = await withSessions(4, false);
  const name = journalName(dir);
  const text = readFileSync(join(dir, name), 'utf8');
  const nl = text.indexOf('\n', text.indexOf('\n') + 1); // end of the second record
  writeFileSync(join(dir, name), `${text.slice(0, nl)}X${text.slice(nl + 1)}`);
  const { store, loaded } = await loadAt(dir);
  assert.is(loaded.sessions.size, 4, 'no record lost');
  for (const s of sessions) assert.ok(loaded.sessions.has(s.id));
  const warning = loaded.warnings.find((w) => w.code === 'ERR_JOURNAL_CORRUPT' && /unreadable/.test(w.message));
  assert.ok(warning);
  assert.is((warning!.details as { recovered: number }).recovered, 2);
  await store.close();
});

test(
  'a zero-filled snapshot is refused with ERR_STATE_LOST and the journal is not deleted; reset-state keeps ' +
    'copies of both',
  async () => {
    const { dir } = await withSessions(60, true);
    const snapshot = readFileSync(join(dir, 'sessions.snapshot'));
    writeFileSync(join(dir, 'sessions.snapshot'), Buffer.alloc(snapshot.length));
    const name = journalName(dir);
    const journal = readFileSync(join(dir, name));
    await refusedWithStateLost(dir);
    const { store, loaded } = await loadAt(dir, true);
    assert.ok(loaded.warnings.some((w) => w.code === 'ERR_STATE_RESET'));
    assert.equal(readFileSync(join(dir, 'sessions.snapshot.corrupt')), Buffer.alloc(snapshot.length));
    assert.equal(readFileSync(join(dir, `${name}.corrupt`)), journal, 'the journal is kept as evidence');
    await store.close();
  },
);

test(
  'a deleted snapshot is refused with ERR_STATE_LOST (its ' + 'journal shows there were sessions), nothing changed',
  async () => {
    const { dir } = await withSessions(60, true);
    rmSync(join(dir, 'sessions.snapshot'));
    await refusedWithStateLost(dir);
    const { store, loaded } = await loadAt(dir, true);
    assert.ok(loaded.warnings.some((w) => w.code === 'ERR_STATE_RESET'));
    assert.ok(readdirSync(dir).some((n) => n.endsWith('.journal.corrupt')));
    await store.close();
  },
);

test('a damaged snapshot line loses only that session; the others start, a copy of the snapshot is kept', async () => {
  const { dir, sessions } = await withSessions(10, true);
  const text = readFileSync(join(dir, 'sessions.snapshot'), 'utf8');
  const at = text.indexOf(sessions[5]!.id);
  writeFileSync(join(dir, 'sessions.snapshot'), text.slice(0, at) + 'Z' + text.slice(at + 1));
  const counted = damagedTables()['sessions.snapshot'] ?? 0;
  const { store, loaded } = await loadAt(dir);
  assert.is(loaded.sessions.size, 9);
  assert.not.ok(loaded.sessions.has(sessions[5]!.id));
  assert.ok(readdirSync(dir).includes('sessions.snapshot.corrupt'));
  assert.is(damagedTables()['sessions.snapshot'], counted + 1, 'counted in damaged_tables');
  await store.close();
});

test('evidence copies never overwrite an earlier one', async () => {
  const { dir } = await withSessions(3, false);
  const name = journalName(dir);
  writeFileSync(join(dir, `${name}.corrupt`), 'an earlier incident');
  const text = readFileSync(join(dir, name), 'utf8');
  writeFileSync(join(dir, name), `${text}0000000a {"garbage":1}\n${text}`);
  const { store } = await loadAt(dir);
  await store.close();
  assert.is(readFileSync(join(dir, `${name}.corrupt`), 'utf8'), 'an earlier incident');
  assert.match(readFileSync(join(dir, `${name}.corrupt-2`), 'utf8'), '"garbage":1');
});

// A deleted or emptied journal started silently with the snapshot alone (every record since the last
// compaction lost), or with nothing at generation 0; a duplicated record was applied twice.
for (const compacted of [true, false]) {
  const where = compacted ? 'after a compaction' : 'at generation 0 (never compacted)';
  test(`a deleted journal ${where} is refused with ERR_STATE_LOST, nothing changed; reset-state starts`, async () => {
    const { dir } = await withSessions(20, compacted);
    rmSync(join(dir, journalName(dir)));
    await refusedWithStateLost(dir);
    const { store, loaded } = await loadAt(dir, true);
    assert.ok(loaded.warnings.some((w) => w.code === 'ERR_STATE_RESET'));
    await store.append([openRecord(makeSession())]);
    await store.close();
    const again = await loadAt(dir);
    assert.equal(again.loaded.warnings, [], 'after the reset the state_dir starts cleanly');
    await again.store.close();
  });

  test(`a 0-byte journal ${where} is refused with ERR_STATE_LOST, nothing changed`, async () => {
    const { dir } = await withSessions(20, compacted);
    writeFileSync(join(dir, journalName(dir)), '');
    await refusedWithStateLost(dir);
  });
}

test('a first start on an empty state_dir, and on a started one with no session yet, is not a loss', async () => {
  const dir = tempDir();
  const first = await loadAt(dir);
  assert.equal([first.loaded.sessions.size, first.loaded.warnings], [0, []]);
  await first.store.close();
  const second = await loadAt(dir);
  assert.equal(
    [second.loaded.sessions.size, second.loaded.warnings],
    [0, []],
    'a journal with only its header is whole',
  );
  await second.store.close();
});

test('a duplicated top-up record is applied once, reported, and rewritten away', async () => {
  const dir = tempDir();
  const { store } = await loadAt(dir);
  const s = makeSession({ allotment: 1000n });
  await store.append([openRecord(s)]);
  await store.append([
    {
      t: 'topup',
      id: s.id,
      add: 500n,
      payment: { method: 'grant', reference: 'top-1', amount: 0n, asset: '', at: Date.now() },
      keys: ['ref:grant:top-1'],
      at: Date.now(),
    },
  ]);
  await store.append([{ t: 'usage', at: Date.now(), entries: [[s.id, 10, 10]] }]);
  await store.close();
  const name = journalName(dir);
  const lines = readFileSync(join(dir, name), 'utf8').split('\n');
  const topup = lines.find((l) => l.includes('"t":"topup"'))!;
  // The top-up line twice, once right after itself and once at the end.
  writeFileSync(join(dir, name), `${lines.flatMap((l) => (l === topup ? [l, l] : [l])).join('\n')}${topup}\n`);
  const { store: reopened, loaded } = await loadAt(dir);
  assert.is(loaded.sessions.get(s.id)!.allotment, 1500n, 'the top-up counts once');
  assert.is(loaded.sessions.get(s.id)!.payments.length, 2);
  assert.ok(
    loaded.warnings.some((w) => w.code === 'ERR_JOURNAL_CORRUPT' && /2 duplicated record/.test(w.message)),
    JSON.stringify(loaded.warnings.map((w) => w.message)),
  );
  await reopened.close();
  const again = await loadAt(dir);
  assert.equal(again.loaded.warnings, []);
  assert.is(again.loaded.sessions.get(s.id)!.allotment, 1500n);
  await again.store.close();
});

// One flipped bit in a journal's header refused the start with ERR_STATE_LOST ("the records … are
// gone") although every record after it was intact. A header damaged in place is damage like a record's: reported,
// counted, a copy kept, every record read on, and the journal rewritten with a good header.
function flipInHeader(dir: string): string {
  const name = journalName(dir);
  const text = readFileSync(join(dir, name), 'utf8');
  assert.match(text.slice(0, text.indexOf('\n')), '"t":"jnl"');
  const at = text.indexOf('"gen"') + 2;
  // One bit of one character of the header's JSON (e → d): the CRC no longer holds.
  writeFileSync(join(dir, name), text.slice(0, at) + String.fromCharCode(text.charCodeAt(at) ^ 1) + text.slice(at + 1));
  return name;
}

for (const compacted of [false, true]) {
  const where = compacted ? 'after a compaction' : 'at generation 0';
  test(
    `a bit flip in the journal's header ${where}: every session read, the damage reported and counted, not ` +
      'ERR_STATE_LOST',
    async () => {
      const { dir, sessions } = await withSessions(60, compacted);
      const name = flipInHeader(dir);
      const { store, loaded } = await loadAt(dir);
      assert.is(loaded.sessions.size, 60);
      for (const s of sessions) assert.ok(loaded.sessions.has(s.id));
      if (compacted) assert.is(loaded.sessions.get(sessions[0]!.id)!.used, 7, 'the record after the header is applied');
      assert.ok(
        loaded.warnings.some((w) => w.code === 'ERR_JOURNAL_CORRUPT' && /header is damaged in place/.test(w.message)),
        JSON.stringify(loaded.warnings.map((w) => w.message)),
      );
      assert.ok(readdirSync(dir).includes(`${name}.corrupt`), 'a copy of the damaged journal is kept');
      const damage = store.stats().damageAtStart;
      assert.equal([damage.headers, damage.regions], [1, 1]);
      await store.close();
      const again = await loadAt(dir);
      assert.equal(again.loaded.warnings, [], 'rewritten with a good header');
      assert.is(again.loaded.sessions.size, 60);
      assert.equal(again.store.stats().damageAtStart, { regions: 0, lostBytes: 0, headers: 0 });
      await again.store.close();
    },
  );
}

test(
  'a journal of only its header, damaged in place (just ' + "after a compaction), starts with the snapshot's sessions",
  async () => {
    const { dir } = await withSessions(10, false);
    const first = await loadAt(dir);
    await first.store.compact(Date.now());
    await first.store.close();
    flipInHeader(dir);
    const { store, loaded } = await loadAt(dir);
    assert.is(loaded.sessions.size, 10);
    assert.is(store.stats().damageAtStart.headers, 1);
    await store.close();
  },
);

test('a journal whose header line is gone (it begins with record 2) is still refused with ERR_STATE_LOST', async () => {
  const { dir } = await withSessions(20, true);
  const name = journalName(dir);
  const lines = readFileSync(join(dir, name), 'utf8').split('\n');
  // A usage record as record 2: header and record 1 cut from the front.
  await (async () => {
    const { store } = await loadAt(dir);
    await store.append([{ t: 'usage', at: Date.now(), entries: [] }]);
    await store.close();
  })();
  const now = readFileSync(join(dir, journalName(dir)), 'utf8').split('\n');
  assert.ok(now.length >= 3 && lines.length >= 2);
  writeFileSync(join(dir, journalName(dir)), now.slice(2).join('\n'));
  await refusedWithStateLost(dir);
});

test(
  'a damaged header and a damaged record 1, then record 2: read on; a damaged line where header and record 1 ' +
    'would be is not',
  async () => {
    const { dir } = await withSessions(3, false);
    const name = journalName(dir);
    const lines = readFileSync(join(dir, name), 'utf8').split('\n');
    const damage = (line: string): string => `${line.slice(0, 20)}X${line.slice(21)}`;
    writeFileSync(join(dir, name), [damage(lines[0]!), damage(lines[1]!), ...lines.slice(2)].join('\n'));
    const { store, loaded } = await loadAt(dir);
    assert.is(loaded.sessions.size, 2, 'record 1 is lost as damage, the header read past');
    await store.close();

    const other = await withSessions(3, false);
    const otherName = journalName(other.dir);
    const otherLines = readFileSync(join(other.dir, otherName), 'utf8').split('\n');
    // One damaged line standing for two numbered lines (header and record 1 merged and garbled): not one header's
    // damage.
    writeFileSync(
      join(other.dir, otherName),
      [damage(otherLines[0]! + otherLines[1]!), ...otherLines.slice(2)].join('\n'),
    );
    await refusedWithStateLost(other.dir);
  },
);

test.run();
