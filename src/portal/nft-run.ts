/** The nft (or tc) command as a function: argv, stdin, a timeout; each failure a SluiceError with its caller's code. */
import { SluiceError } from '../errors.ts';
import type { SpawnFn } from './command.ts';
import { sharedCommandShell } from './command-shell.ts';

/** Runs nft with these arguments and `stdin`; resolves stdout, rejects with ERR_KERNEL_QUOTA. */
export type NftRun = (args: readonly string[], stdin: string) => Promise<string>;

/**
 * `errCode`/`name`: the shaper runs tc and nft through the same runner, failing with its own code (ERR_SHAPER).
 * Without `spawn`, each run goes through the thread's long-lived shell (command-shell.ts: a spawn from Node costs the
 * daemon a fork of itself); with it (tests), each is spawned.
 */
export function nftRunner(
  command: readonly string[],
  timeoutMs: number,
  options: { spawn?: SpawnFn; errCode?: 'ERR_KERNEL_QUOTA' | 'ERR_SHAPER'; name?: string } = {},
): NftRun {
  const { spawn, errCode = 'ERR_KERNEL_QUOTA', name = 'nft' } = options;
  if (spawn === undefined) return viaShell(command, timeoutMs, errCode, name);
  return (args, stdin) =>
    new Promise<string>((resolve, reject) => {
      const [file, ...prefix] = command;
      if (file === undefined) {
        reject(new SluiceError(errCode, `the ${name} command is empty`));
        return;
      }
      const child = spawn(file, [...prefix, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      let done = false;
      const finish = (fn: () => void) => {
        if (!done) {
          done = true;
          clearTimeout(timer);
          fn();
        }
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish(() => reject(new SluiceError(errCode, `${name} did not answer within ${timeoutMs} ms`)));
      }, timeoutMs);
      child.stdout?.on('data', (b: Buffer) => out.push(b));
      child.stderr?.on('data', (b: Buffer) => {
        if (err.length < 2000) err += b.toString('utf8');
      });
      child.on('error', (e) =>
        finish(() => reject(new SluiceError(errCode, `cannot run ${file}: ${e.message}`, { cause: e }))),
      );
      child.on('close', (code, signal) =>
        finish(() => {
          if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
          else
            reject(
              new SluiceError(
                errCode,
                `${name} failed (${signal ?? `exit ${code}`}): ${err.trim().split('\n').slice(0, 3).join(' | ')}`,
              ),
            );
        }),
      );
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(stdin);
    });
}

function viaShell(
  command: readonly string[],
  timeoutMs: number,
  errCode: 'ERR_KERNEL_QUOTA' | 'ERR_SHAPER',
  name: string,
): NftRun {
  return async (args, stdin) => {
    const [file] = command;
    if (file === undefined) throw new SluiceError(errCode, `the ${name} command is empty`);
    const outcome = await sharedCommandShell().run({ argv: [...command, ...args], stdin, timeoutMs });
    switch (outcome.kind) {
      case 'spawn-failed':
        throw new SluiceError(errCode, `cannot run ${file}: ${(outcome.error as Error).message}`, {
          cause: outcome.error,
        });
      case 'killed':
        throw new SluiceError(errCode, `${name} did not answer within ${timeoutMs} ms`);
      case 'exited':
        if (outcome.code === 0) return outcome.stdout?.toString('utf8') ?? '';
        throw new SluiceError(
          errCode,
          `${name} failed (${outcome.signal ?? `exit ${outcome.code}`}): ` +
            outcome.stderr.trim().split('\n').slice(0, 3).join(' | '),
        );
    }
  };
}
