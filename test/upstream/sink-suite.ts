/**
 * One behaviour suite for every UpstreamSink (src/upstream/sink.ts; STYLE.md point 10, in the manner of MQTT.js's
 * abstract client tests): `upstreamSinkSuite(name, makeRig)` registers the rules every sink is held to against its real
 * peer, driven by a real SessionManager through the SinkHost as the daemon wires it:
 *  - every session event is delivered once after a peer outage (queued while the peer is down, sent when it is back;
 *    counted at the peer after the sink's close drained it);
 *  - stop ends a send in flight (the peer holds it unanswered: close() returns), and what it held is on flash: the
 *    sink opened again on the same state directory delivers it;
 *  - reads of a peer's answer are bounded (an endless answer is cut), where the sink reads one.
 */
import { rmSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger } from '../../src/log.ts';
import { SessionManager, type Session } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import { SinkHost } from '../../src/upstream/index.ts';
import type { UpstreamSink } from '../../src/upstream/sink.ts';
import { tempDir } from './mqtt-rig.ts';
import { until } from '../helpers/until.ts';

/** Two hex digits of a number's low byte, for a MAC's part. */
const hexByte = (n: number): string => (n & 255).toString(16).padStart(2, '0');

export interface SinkRig {
  /** The sink on `stateDir` (a second one on the same directory is the sink after a restart). */
  open(stateDir: string, sessions: SessionManager): UpstreamSink;
  down(): Promise<void>;
  up(): Promise<void>;
  /** How many times the peer received each event kind of the session. */
  received(sessionId: string): { started: number; ended: number };
  /** The peer takes what comes next and answers nothing until `release`; resolves at once. */
  hold(): Promise<void>;
  release(): Promise<void>;
  /**
   * The peer answers the next send with a body that never ends; resolves true when the sink hung up on it. Absent: the
   * sink reads no answer of the peer's size to bound.
   */
  endlessAnswer?(): { cut: Promise<boolean> };
  close(): Promise<void>;
}

const log = createLogger({ level: 'error' });
let macSeq = 0;
const newMac = (): string => `02:00:00:5d:${hexByte(++macSeq >> 8)}:${hexByte(macSeq)}`;

export function upstreamSinkSuite(name: string, makeRig: () => Promise<SinkRig>): void {
  const it = suite(`UpstreamSink suite: ${name}`);
  let rig: SinkRig;
  it.before(async () => {
    rig = await makeRig();
  });
  it.after(async () => {
    await rig?.close();
  });

  /** A SessionManager whose events reach the sink through the SinkHost, as in the daemon. */
  async function wired(stateDir: string): Promise<{ sessions: SessionManager; host: SinkHost; sink: UpstreamSink }> {
    const sessions = await SessionManager.open({ store: new MemoryStore() });
    const sink = rig.open(stateDir, sessions);
    const host = new SinkHost({ log });
    host.add(sink);
    host.attach(sessions);
    await host.start();
    return { sessions, host, sink };
  }

  async function session(sessions: SessionManager): Promise<Session> {
    const mac = newMac();
    return (
      await sessions.activate({
        mac,
        metric: 'bytes',
        allotment: 1n << 30n,
        payment: { method: 'grant', reference: `suite-${mac}`, amount: 0n, asset: '', at: Date.now() },
      })
    ).session;
  }

  it('every event is delivered once after a peer outage', async () => {
    const dir = tempDir('sluice-sink-suite-');
    await rig.down();
    const { sessions, sink } = await wired(dir);
    try {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const s = await session(sessions);
        ids.push(s.id);
        await sessions.end(s.id, 'admin');
      }
      await rig.up();
      await until(
        () =>
          ids.every((id) => {
            const r = rig.received(id);
            return r.started >= 1 && r.ended >= 1;
          }),
        60_000,
        'every event after the outage',
      );
      await sink.close();
      for (const id of ids) assert.equal(rig.received(id), { started: 1, ended: 1 }, `each event of ${id} once`);
    } finally {
      await sink.close();
      await sessions.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stop ends a send in flight; what it held is delivered by the sink opened again on its state', async () => {
    const dir = tempDir('sluice-sink-suite-');
    let first: Awaited<ReturnType<typeof wired>> | undefined;
    let second: Awaited<ReturnType<typeof wired>> | undefined;
    try {
      first = await wired(dir);
      await rig.hold();
      const s = await session(first.sessions);
      // close() returns while the peer still holds the send (the file's hang guard is the bound, not a timer here).
      await first.sink.close();
      await first.sessions.close();
      await rig.release();
      second = await wired(dir);
      await until(() => rig.received(s.id).started >= 1, 60_000, 'the held start delivered after the restart');
    } finally {
      await rig.release();
      await first?.sink.close();
      await second?.sink.close();
      await second?.sessions.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an endless answer from the peer is cut', async () => {
    if (!rig.endlessAnswer) {
      console.log(`# UpstreamSink suite: ${name}: reads no answer of the peer's choosing in size, rule not applicable`);
      return;
    }
    const dir = tempDir('sluice-sink-suite-');
    const { sessions, sink } = await wired(dir);
    try {
      const answer = rig.endlessAnswer();
      await session(sessions);
      assert.is(await answer.cut, true, 'the sink hung up on the endless answer');
    } finally {
      await sink.close();
      await sessions.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.run();
}
