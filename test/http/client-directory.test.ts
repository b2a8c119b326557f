// tier: fast
// IP → MAC for LAN requests: one list read shared by lookups, and one more look for an address the list in hand does
// not name (a device that joined after it was read), spaced so unknown addresses cannot drive the portal's reads.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientDirectory, type ListedClient } from '../../src/gate/client-directory.ts';
import { FakeTime } from '../helpers/fake-time.ts';

const A = '02:00:00:00:0e:01';
const B = '02:00:00:00:0e:02';

/** A portal list the test edits, and the reads made of it with the age each allowed. */
function rig() {
  const time = new FakeTime();
  const clients: ListedClient[] = [{ mac: A, ip: '10.0.0.10' }];
  const reads: Array<{ at: number; maxAgeMs: number }> = [];
  const start = time.now();
  const directory = new ClientDirectory({
    read: async (maxAgeMs) => {
      reads.push({ at: time.now() - start, maxAgeMs });
      return clients.map((c) => ({ ...c }));
    },
    maxAgeMs: 1000,
    clock: time,
    timers: time,
  });
  return { time, clients, reads, directory };
}

test('a device that joined after the list was read is found by a second look, not refused', async () => {
  const { time, clients, reads, directory } = rig();
  assert.is(await directory.macOf('10.0.0.10'), A);
  clients.push({ mac: B, ip: '10.0.0.11' }); // the phone joins just after that read
  await time.advance(200);
  const lookup = directory.macOf('10.0.0.11');
  await time.advance(799);
  assert.is(reads.length, 1, 'the second look waits until the first read is maxAgeMs old');
  await time.advance(1);
  assert.is(await lookup, B);
  assert.equal(
    reads,
    [
      { at: 0, maxAgeMs: 1000 },
      { at: 1000, maxAgeMs: 0 },
    ],
    'the second look asks for a list read from then on',
  );
  assert.is(await directory.macOf('10.0.0.11'), B, 'that list serves the next lookups');
  assert.is(reads.length, 2);
});

test('addresses the portal does not know: null, and at most one extra read per maxAgeMs however many ask', async () => {
  const { time, reads, directory } = rig();
  const answers: Array<Promise<string | null>> = [];
  for (let i = 0; i < 50; i++) {
    answers.push(directory.macOf(`10.0.9.${i}`));
    await time.advance(100);
  }
  await time.advance(2000);
  assert.equal(
    await Promise.all(answers),
    answers.map(() => null),
  );
  assert.ok(reads.length <= 8, `5 s of unknown addresses made ${reads.length} reads: ${JSON.stringify(reads)}`);
  for (let i = 1; i < reads.length; i++)
    assert.ok(reads[i]!.at - reads[i - 1]!.at >= 1000, `reads spaced by maxAgeMs: ${JSON.stringify(reads)}`);
  assert.is(await directory.macOf('10.0.0.10'), A, 'the known client still answers');
});

test('a recheck that fails rejects the lookups that waited for it; the next miss reads again', async () => {
  const time = new FakeTime();
  let fail = false;
  let reads = 0;
  const directory = new ClientDirectory({
    read: async () => {
      reads++;
      if (fail) throw new Error('portal down');
      return [{ mac: A, ip: '10.0.0.10' }];
    },
    clock: time,
    timers: time,
  });
  assert.is(await directory.macOf('10.0.0.10'), A);
  fail = true;
  const missed = directory.macOf('10.0.0.11');
  const caught = missed.catch((e: Error) => e.message);
  await time.advance(1000);
  assert.is(await caught, 'portal down');
  fail = false;
  const again = directory.macOf('10.0.0.11');
  await time.advance(1000);
  assert.is(await again, null);
  assert.is(reads, 4, 'the failed recheck was not reused: the next lookup read the list, then looked again');
});

test.run();
