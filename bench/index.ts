// `npm run bench -- <name> [options]`: runs bench/<name>.ts, whose default export takes the remaining argv.
// With no name, runs every benchmark with its defaults. Benchmarks print figures; they never assert.
import { readdirSync } from 'node:fs';

const here = new URL('.', import.meta.url);
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'index.ts')
  .map((f) => f.slice(0, -3))
  .sort();
const [name, ...rest] = process.argv.slice(2);

if (name === '-h' || name === '--help') {
  console.log(`usage: npm run bench -- [${available.join('|')}] [options]`);
} else {
  for (const bench of name ? [name] : available) {
    if (!available.includes(bench)) {
      console.error(`unknown benchmark '${bench}' (have: ${available.join(', ')})`);
      process.exit(2);
    }
    const mod = (await import(new URL(`./${bench}.ts`, here).href)) as { default: (argv: string[]) => Promise<void> };
    await mod.default(name ? rest : []);
  }
}
