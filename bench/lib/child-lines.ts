import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** Reads a child's stdout line by line: each call of the returned function resolves with the next line. */
export function lines(child: ChildProcess): () => Promise<string> {
  const rl = createInterface({ input: child.stdout! });
  const queue: string[] = [];
  const waiters: Array<(l: string) => void> = [];
  rl.on('line', (l) => {
    const w = waiters.shift();
    if (w) w(l);
    else queue.push(l);
  });
  return () =>
    new Promise((resolve) => {
      const l = queue.shift();
      if (l !== undefined) resolve(l);
      else waiters.push(resolve);
    });
}
