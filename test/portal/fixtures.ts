import { readFileSync } from 'node:fs';

/** Reads test/fixtures/ndsctl/<name> (copies of the real captures; tests never read /work/shared). */
export function ndsctlFixture(name: string): string {
  return readFileSync(new URL(`../fixtures/ndsctl/${name}`, import.meta.url), 'utf8');
}
