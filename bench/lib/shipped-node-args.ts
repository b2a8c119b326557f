/**
 * How the package starts sluice: files/usr/bin/sluice, the command procd runs. Its `exec node …` line gives the node
 * flags, and its `export NAME=value` lines the environment it adds. The memory benches start the daemon with both, so
 * what they measure is the package as shipped.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const COMMAND = fileURLToPath(new URL('../../files/usr/bin/sluice', import.meta.url));

function commandLines(): string[] {
  return readFileSync(COMMAND, 'utf8').split('\n');
}

export function shippedNodeArgs(): string[] {
  const line = commandLines().find((l) => l.startsWith('exec node '));
  if (line === undefined) throw new Error(`${COMMAND}: no 'exec node …' line`);
  // The words between `node` and the bundle's path (the first word that is not a flag).
  const words = line.split(' ').slice(2);
  return words.slice(
    0,
    words.findIndex((w) => !w.startsWith('--')),
  );
}

/** The variables the command exports before it execs node (plain `export NAME=value` lines, no expansion). */
export function shippedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of commandLines()) {
    const m = /^export ([A-Za-z_][A-Za-z0-9_]*)=(\S+)$/.exec(line);
    if (m) env[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
  }
  return env;
}

/** A bench's `--env "NAME=value NAME2=value2"`: the variables the daemon gets instead of the launcher's ("": none). */
export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const word of text.split(' ')) {
    const eq = word.indexOf('=');
    if (eq > 0) env[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return env;
}

/** How a bench names the environment it starts the daemon with, before `node …`: "NAME=value " each. */
export function envPrefix(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => `${k}=${v} `)
    .join('');
}
