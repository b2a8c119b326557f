/**
 * A real local chain for the tests: anvil from the npm package @foundry-rs/anvil (its binary comes in the
 * per-platform package, e.g. @foundry-rs/anvil-linux-amd64), started on a free port, automining, stopped by the test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** The anvil binary inside the platform package npm installed next to @foundry-rs/anvil. */
export function anvilBinary(): string {
  const arch = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch];
  if (!arch) throw new Error(`anvil: no @foundry-rs package for ${process.platform}/${process.arch}`);
  const pkg = `@foundry-rs/anvil-${process.platform}-${arch}`;
  let path: string;
  try {
    path = join(
      dirname(require.resolve(`${pkg}/package.json`)),
      'bin',
      process.platform === 'win32' ? 'anvil.exe' : 'anvil',
    );
  } catch {
    throw new Error(
      `anvil: ${pkg} is not installed (npm ci installs it as an optional dependency of @foundry-rs/anvil)`,
    );
  }
  if (!existsSync(path)) throw new Error(`anvil: ${path} missing`);
  return path;
}

export interface AnvilProcess {
  rpcUrl: string;
  port: number;
  /** Everything anvil printed (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

export interface AnvilOptions {
  chainId?: number;
  /** Extra command-line arguments (e.g. ['--block-time', '1']). */
  args?: string[];
}

/** Starts anvil on a free port (it binds port 0 and prints the one it got) and resolves once it listens. */
export function startAnvil(options: AnvilOptions = {}): Promise<AnvilProcess> {
  const args = [
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--chain-id',
    String(options.chainId ?? 31337),
    '--accounts',
    '1',
    ...(options.args ?? []),
  ];
  const child: ChildProcess = spawn(anvilBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`anvil did not start in 20 s:\n${out}`));
    }, 20_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.length > 200_000) out = out.slice(-100_000);
      const m = /Listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      // Keep draining so a chatty anvil never blocks on a full pipe.
      child.stdout?.on('data', (more: Buffer) => {
        out = (out + more.toString()).slice(-100_000);
      });
      const port = Number(m[1]);
      // Also on stdout as a `# ` line: test/run.mjs prints those for a passing file, and a stranded transaction is news
      // either way.
      const watchdog = watchStrandedTransactions(`http://127.0.0.1:${port}`, (line) => {
        out += `${line}\n`;
        console.log(`# ${line}`);
      });
      child.once('exit', () => watchdog.stop());
      resolve({
        rpcUrl: `http://127.0.0.1:${port}`,
        port,
        output: () => out,
        stop: () =>
          new Promise<void>((done) => {
            watchdog.stop();
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 3000).unref();
          }),
      });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`anvil exited (${code}) before listening:\n${out}`));
    });
  });
}

/** How often the watchdog looks at anvil's pool; a transaction pending at two looks in a row is stranded. */
const STRANDED_LOOK_MS = 1000;

/**
 * anvil's automine can strand a ready transaction: its miner takes the pool's ready transactions when notified and, if
 * the new one is not among them yet, waits for the next notification (foundry-rs/foundry#10122; its
 * ReadyTransactionMiner in crates/anvil/src/eth/miner.rs). The sender's receipt wait then hangs until viem's 180 s
 * default: CI's upto-daemon setup did. With automine on nothing stays pending otherwise (a nonce gap is `queued`, not
 * `pending`), so a transaction seen pending at two looks a second apart is mined with evm_mine, and the line says so in
 * anvil's output (which failure messages show).
 */
function watchStrandedTransactions(rpcUrl: string, note: (line: string) => void): { stop(): void } {
  let stopped = false;
  let seen = new Set<string>();
  const rpc = async (method: string): Promise<unknown> => {
    const res = await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: [] }),
    });
    return ((await res.json()) as { result?: unknown }).result;
  };
  const look = async (): Promise<void> => {
    const content = (await rpc('txpool_content')) as
      { pending?: Record<string, Record<string, { hash?: string }>> } | undefined;
    const pending = new Set<string>();
    for (const bySender of Object.values(content?.pending ?? {}))
      for (const tx of Object.values(bySender)) if (tx.hash) pending.add(tx.hash);
    const stranded = [...pending].filter((h) => seen.has(h));
    seen = pending;
    if (stranded.length === 0 || stopped || (await rpc('anvil_getAutomine')) !== true) return;
    note(`[test chain] automine left ${stranded.join(', ')} pending for ${STRANDED_LOOK_MS} ms or more: evm_mine`);
    await rpc('evm_mine');
  };
  const timer = setInterval(() => {
    if (!stopped) look().catch(() => undefined);
  }, STRANDED_LOOK_MS);
  timer.unref();
  return {
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
