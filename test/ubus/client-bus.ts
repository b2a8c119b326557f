/**
 * Test bus for the client tests: the embedded broker, or a real ubusd when SLUICE_REAL_UBUSD=/path/to/ubusd is
 * set (then every suite runs against both). Each bus lives in its own temp dir, removed by cleanup().
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UbusBroker } from '../../src/ubus/broker/index.ts';
import { until } from '../helpers/until.ts';

export type BusKind = 'embedded' | 'real';

export interface TestBus {
  kind: BusKind;
  socketPath: string;
  /** Stops the broker/ubusd (clients see EOF); start() brings a fresh one up on the same socket. */
  stop(): Promise<void>;
  start(): Promise<void>;
  cleanup(): Promise<void>;
}

const realUbusd = process.env.SLUICE_REAL_UBUSD;

/** The buses to run against; says once when the real ubusd is skipped. */
export function busKinds(file: string): BusKind[] {
  if (realUbusd === undefined || realUbusd === '') {
    console.log(`${file}: real ubusd runs skipped (set SLUICE_REAL_UBUSD=/path/to/ubusd to add them)`);
    return ['embedded'];
  }
  return ['embedded', 'real'];
}

export async function startBus(kind: BusKind): Promise<TestBus> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-ubus-'));
  const socketPath = join(dir, 'ubus.sock');
  let broker: UbusBroker | undefined;
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    if (kind === 'embedded') {
      broker = await UbusBroker.listen({ socketPath });
      return;
    }
    rmSync(socketPath, { force: true });
    child = spawn(realUbusd!, ['-s', socketPath], { stdio: 'ignore' });
    for (let i = 0; i < 200 && !existsSync(socketPath); i++) await new Promise((r) => setTimeout(r, 10));
    if (!existsSync(socketPath)) throw new Error(`ubusd did not create ${socketPath}`);
  };
  const stop = async (): Promise<void> => {
    if (broker !== undefined) {
      await broker.close();
      broker = undefined;
    }
    if (child !== undefined) {
      const c = child;
      child = undefined;
      if (c.exitCode === null) {
        await new Promise<void>((resolve) => {
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
        });
      }
    }
  };
  await start();
  return {
    kind,
    socketPath,
    start,
    stop,
    async cleanup() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` is true (events travel through a socket, so tests wait for them instead of sleeping blind). */
export const waitFor = (check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> =>
  until(check, timeoutMs, `waiting for ${what}`, 5);

/** uvu has no async rejects(): awaits `p` and checks the rejection with `check`. */
export async function rejects(
  p: Promise<unknown>,
  check: (err: { code?: string; status?: number }) => boolean,
): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!check(err as { code?: string; status?: number }))
      throw new Error(
        `unexpected rejection: ${String((err as Error).message ?? err)} (${(err as { code?: string }).code})`,
      );
    return;
  }
  throw new Error('expected a rejection');
}
