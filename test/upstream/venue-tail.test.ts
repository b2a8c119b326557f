// tier: fast
/**
 * The holder's last reading (src/upstream/venue-tail.ts, docs/roaming.md "The holder closes first"): what the close's
 * reading shows past the meter's mark is billed once, against the mark as it stands when it is billed. A tick whose
 * reading was under way when the close began commits during it: the bytes it billed are not billed again. The bill
 * and the session's end are on flash before the portal's deauth, which deletes the counters they came from.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { billTail, closeWithTail, type TailParts, type TailSessions } from '../../src/upstream/venue-tail.ts';
import type { CounterMark } from '../../src/meter/index.ts';
import type { Session } from '../../src/sessions/index.ts';
import { silentLogger } from '../../src/log.ts';

const MAC = '02:00:00:00:7a:01';

/**
 * A session of 1 MB, its bills kept; a close whose kernel reading is `after`, `during` run inside the close. `events`:
 * the bills, the end's write once durable and the portal's deauth, in their order.
 */
function rig(marks: Map<string, CounterMark>, after: { down: number; up: number }, during: () => void) {
  const billed: number[] = [];
  const events: string[] = [];
  const session = { id: 's1', mac: MAC, metric: 'bytes', allotment: '1000000', used: 0, state: 'ACTIVE' };
  const sessions = {
    get: () => session,
    applyUsage: (_ids: string[], bytes: number[]) => {
      billed.push(bytes[0]!);
      events.push(`billed ${bytes[0]!}`);
      session.used += bytes[0]!;
    },
    reportUsage: () => undefined,
    writesSettled: async () => undefined,
  } as unknown as TailSessions;
  // The end as SessionManager.end: ended at once, resolved once its record is on flash (a later turn).
  const end = async () => {
    session.state = 'TERMINATED';
    await new Promise((r) => setImmediate(r));
    events.push(`end written, used ${session.used}`);
    return session as unknown as Session;
  };
  const parts: TailParts = {
    valve: {
      closeAndCount: async (_mac, count) => {
        const counted = await count(async () => null);
        events.push('deauth');
        return { result: 'closed' as const, counted };
      },
      released: async () => undefined,
    },
    kernel: () => ({
      read: async () => {
        during();
        await Promise.resolve();
        return { ...after, epoch: 7 };
      },
    }),
    mark: (mac) => marks.get(mac),
  };
  const deps = { closeWithTail: closeWithTail(parts), sessions, log: silentLogger };
  return { billed, events, run: () => billTail(deps, session as unknown as Session, end) };
}

test('the bytes past the mark are billed once', async () => {
  const marks = new Map([[MAC, { token: 7, down: 1000, up: 200 }]]);
  const r = rig(marks, { down: 5000, up: 700 }, () => undefined);
  await r.run();
  assert.equal(r.billed, [4500]);
});

test("the tail billed and the session's end on flash before the portal's deauth", async () => {
  const marks = new Map([[MAC, { token: 7, down: 1000, up: 200 }]]);
  const r = rig(marks, { down: 5000, up: 700 }, () => undefined);
  await r.run();
  assert.equal(r.events, ['billed 4500', 'end written, used 4500', 'deauth']);
});

test('a tick that commits during the close: billed against its mark, not the one before it', async () => {
  const marks = new Map([[MAC, { token: 7, down: 1000, up: 200 }]]);
  // The tick read 3000/500 before the close and commits (bills 2300, moves the mark) while the close reads.
  const r = rig(marks, { down: 5000, up: 700 }, () => marks.set(MAC, { token: 7, down: 3000, up: 500 }));
  await r.run();
  assert.equal(r.billed, [2200], 'only what passed after the tick that committed meanwhile');
});

test('counters of another epoch, or a tick that read past the close: nothing billed here', async () => {
  const other = new Map([[MAC, { token: 8, down: 0, up: 0 }]]);
  const a = rig(other, { down: 5000, up: 700 }, () => undefined);
  await a.run();
  assert.equal(a.billed, []);
  const marks = new Map([[MAC, { token: 7, down: 1000, up: 200 }]]);
  const b = rig(marks, { down: 5000, up: 700 }, () => marks.set(MAC, { token: 7, down: 5100, up: 700 }));
  await b.run();
  assert.equal(b.billed, []);
});

test.run();
