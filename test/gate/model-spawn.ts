// ndsctl as a child process whose answers are the portal model's: the valve's spawn path without a process.
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { ChildProcess } from 'node:child_process';
import type { SpawnFn } from '../../src/portal/index.ts';
import type { PortalModel } from '../../src/sim/portal.ts';

export type Fault = { code: number; stdout: string } | undefined;

/** `fault(args)`, when it gives one, answers instead of the model; `delayMs(args)` holds the answer (a slow auth). */
export function modelSpawn(
  model: PortalModel,
  fault: (args: readonly string[]) => Fault = () => undefined,
  delayMs: (args: readonly string[]) => number = () => 0,
): SpawnFn {
  return (_file, args) => {
    const child = new EventEmitter() as EventEmitter & {
      stdout: PassThrough;
      stderr: PassThrough;
      pid: undefined;
      kill: () => boolean;
    };
    child.stdout = new PassThrough();
    child.stderr = new PassThrough();
    child.pid = undefined;
    child.kill = () => true;
    setTimeout(() => {
      const r = fault(args) ?? model.execute(args);
      if (r.stdout !== '') child.stdout.write(r.stdout);
      setImmediate(() => child.emit('close', r.code, null));
    }, delayMs(args));
    return child as unknown as ChildProcess;
  };
}
