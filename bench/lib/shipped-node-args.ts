/**
 * The node flags the package starts sluice with: the `exec node …` line of files/usr/bin/sluice, the command procd
 * runs. The memory benches start the daemon with them, so what they measure is the package as shipped.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const COMMAND = fileURLToPath(new URL('../../files/usr/bin/sluice', import.meta.url));

export function shippedNodeArgs(): string[] {
  const line = readFileSync(COMMAND, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('exec node '));
  if (line === undefined) throw new Error(`${COMMAND}: no 'exec node …' line`);
  // The words between `node` and the bundle's path (the first word that is not a flag).
  const words = line.split(' ').slice(2);
  return words.slice(
    0,
    words.findIndex((w) => !w.startsWith('--')),
  );
}
