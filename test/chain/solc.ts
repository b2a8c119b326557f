/**
 * Compiles the tests' Solidity with solc-js from npm (no download: the compiler is inside the package). The output is
 * cached under node_modules/.cache/sluice-solc keyed by the sources' and compiler's hash, because loading solc's wasm
 * and compiling costs seconds and every chain test file needs the same token.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Abi, Hex } from 'viem';

export interface Artifact {
  abi: Abi;
  bytecode: Hex;
}

const require = createRequire(import.meta.url);
const ROOT = new URL('../../', import.meta.url).pathname;
const CACHE = join(ROOT, 'node_modules', '.cache', 'sluice-solc');

interface SolcOutput {
  errors?: { severity: string; formattedMessage: string }[];
  contracts?: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>>;
}

/** Compiles `sources` (file name → Solidity text) and returns every contract by name. Throws on any error. */
export function compileSolidity(sources: Record<string, string>): Record<string, Artifact> {
  const solcVersion = (require('solc/package.json') as { version: string }).version;
  const input = {
    language: 'Solidity',
    sources: Object.fromEntries(Object.entries(sources).map(([file, content]) => [file, { content }])),
    settings: {
      // cancun: what every chain sluice targets runs, and what anvil 1.x accepts by default.
      evmVersion: 'cancun',
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  };
  const text = JSON.stringify(input);
  const key = createHash('sha256').update(solcVersion).update(text).digest('hex').slice(0, 24);
  const cached = join(CACHE, `${key}.json`);
  if (existsSync(cached)) return JSON.parse(readFileSync(cached, 'utf8')) as Record<string, Artifact>;

  const solc = require('solc') as { compile(input: string): string };
  const output = JSON.parse(solc.compile(text)) as SolcOutput;
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length) throw new Error(`solc ${solcVersion}:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  const artifacts: Record<string, Artifact> = {};
  for (const file of Object.values(output.contracts ?? {})) {
    for (const [name, c] of Object.entries(file))
      artifacts[name] = { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` };
  }
  mkdirSync(CACHE, { recursive: true });
  // Two test files may compile at once: write aside and rename so neither reads a half-written cache.
  const tmp = `${cached}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(artifacts));
  renameSync(tmp, cached);
  return artifacts;
}

/** Reads the .sol files next to this module (by file name) and compiles them together. */
export function compileTestContracts(...files: string[]): Record<string, Artifact> {
  const dir = new URL('.', import.meta.url).pathname;
  return compileSolidity(Object.fromEntries(files.map((f) => [f, readFileSync(join(dir, f), 'utf8')])));
}
