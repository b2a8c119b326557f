import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { ChildProcess } from 'node:child_process';
import type { SpawnFn } from '../../src/portal/index.ts';

/** A scripted child: emits the given stdout and exit code, or hangs until killed. */
export interface Script {
  stdout?: string | string[];
  stderr?: string;
  code?: number;
  hang?: boolean;
  spawnError?: string;
}

export function fakeSpawn(scripts: Script[]): { spawn: SpawnFn; calls: string[][]; kills: number } {
  const state = { calls: [] as string[][], kills: 0 };
  const spawn: SpawnFn = (file, args) => {
    state.calls.push([file, ...args]);
    const script = scripts.shift() ?? { code: 0 };
    const child = new EventEmitter() as EventEmitter & {
      stdout: PassThrough;
      stderr: PassThrough;
      pid: undefined;
      kill: (s?: string) => boolean;
    };
    child.stdout = new PassThrough();
    child.stderr = new PassThrough();
    child.pid = undefined;
    child.kill = () => {
      state.kills++;
      setImmediate(() => child.emit('close', null, 'SIGKILL'));
      return true;
    };
    setImmediate(() => {
      if (script.spawnError !== undefined) {
        child.emit(
          'error',
          Object.assign(new Error(`spawn ${file} ${script.spawnError}`), { code: script.spawnError }),
        );
        child.emit('close', -2, null);
        return;
      }
      if (script.stderr) child.stderr.write(script.stderr);
      for (const chunk of [script.stdout ?? ''].flat()) if (chunk !== '') child.stdout.write(chunk);
      if (!script.hang) setImmediate(() => child.emit('close', script.code ?? 0, null));
    });
    return child as unknown as ChildProcess;
  };
  return {
    spawn,
    get calls() {
      return state.calls;
    },
    get kills() {
      return state.kills;
    },
  };
}
