// Tiers and prerequisites, shared by test/run.mjs (plain node) and the test files (through prerequisites.ts).
//
// Every test file declares its tier on its first line, and the commands it cannot run without:
//   // tier: peers; needs freeradius radclient
// The runner refuses a file without that line (a FAIL that says so), so no file drops out of a tier unnoticed.
// Tiers, by the heaviest thing a file runs (a file needing anvil and FreeRADIUS is peers):
//   fast    pure logic and fake time; temp files and in-process sockets at most (the edit loop)
//   daemon  real processes built from this repo only: the daemon, the embedded broker, child processes, HTTP servers
//   chain   anvil (npm devDependency @foundry-rs/anvil) with the contracts and facilitators of test/chain/
//   peers   programs installed beside Node: FreeRADIUS, mosquitto, shellcheck, python3, a real ubusd
//   lab     network namespaces as root: the openNDS lab (test/e2e), the procd lab
// A missing need is a counted skip (`SKIP <file>: needs …`); in CI (CI=true) it is a failure, since .ci/run
// installs every command a file may name here. What CI does not install (a real ubusd, nodogsplash, apk-tools,
// the procd lab) stays opt-in by environment variable inside the file, and its skip passes in CI too.
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { delimiter, join, relative, resolve, sep } from 'node:path';

export const TIERS = /** @type {const} */ (['fast', 'daemon', 'chain', 'peers', 'lab']);

/** CI sets CI=true (GitHub, GitLab and .ci/run's caller); '' / 'false' / '0' mean a local run. */
export const inCI = !['', 'false', '0'].includes((process.env.CI ?? '').trim().toLowerCase());

/**
 * Every test file under `dir` (each `*.test.ts`, fixtures and node_modules left out), in a stable order.
 * @param {string} dir
 * @returns {string[]}
 */
export function testFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (name === 'fixtures' || name === 'node_modules') continue;
    if (statSync(path).isDirectory()) out.push(...testFiles(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

/**
 * The runner's arguments (`--tier <tier>[,<tier>]`, `--tier=…`, repeatable; anything else a substring of a file's
 * path): the tiers and the substrings, or an error saying what is wrong.
 * @param {readonly string[]} args
 * @returns {{ tiers: string[], filters: string[] } | { error: string }}
 */
export function tierArgs(args) {
  const tiers = [];
  const filters = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = arg === '--tier' ? args[++i] : arg.startsWith('--tier=') ? arg.slice('--tier='.length) : null;
    if (value === null) {
      filters.push(arg);
      continue;
    }
    if (!value) return { error: '--tier needs a value' };
    for (const t of value.split(',').filter(Boolean)) {
      if (!TIERS.includes(t)) return { error: `unknown tier '${t}' (one of ${TIERS.join(', ')})` };
      tiers.push(t);
    }
  }
  return { tiers, filters };
}

/**
 * The files the runner's path arguments choose: a file runs when its path under `testDir` contains one of `filters`.
 * A filter that names a file or folder from `cwd` (`test/payments/x402-chain.test.ts`, as a shell completes it, or
 * `./test/portal/`) is that path under `testDir`. A filter that chooses no file is returned in `unmatched`: a typo
 * must not pass as a run of nothing.
 * @param {readonly string[]} files absolute paths (testFiles)
 * @param {string} testDir
 * @param {readonly string[]} filters
 * @param {string} cwd
 * @returns {{ chosen: string[], unmatched: string[] }}
 */
export function chooseFiles(files, testDir, filters, cwd) {
  if (filters.length === 0) return { chosen: [...files], unmatched: [] };
  const names = files.map((f) => relative(testDir, f));
  const parts = filters.map((filter) => {
    const path = relative(testDir, resolve(cwd, filter));
    if (path.startsWith('..') || path === '') return filter;
    try {
      return statSync(resolve(cwd, filter)).isDirectory() ? path + sep : path;
    } catch {
      return filter; // not a path from cwd: a substring, as before
    }
  });
  const chosen = files.filter((_, i) => parts.some((p) => names[i].includes(p)));
  const unmatched = filters.filter((_, k) => !names.some((n) => n.includes(parts[k])));
  return { chosen, unmatched };
}

const DECLARATION = /^\/\/ tier: ([a-z]+)(?:; needs ([a-z0-9 ._-]+))?\s*$/;

/**
 * The tier and needs a file's first line declares, or an error saying what is wrong with it.
 * @param {string} text the file's content
 * @returns {{ tier: string, needs: string[] } | { error: string }}
 */
export function declaration(text) {
  const nl = text.indexOf('\n');
  const first = (nl < 0 ? text : text.slice(0, nl)).trimEnd();
  const m = DECLARATION.exec(first);
  if (!m)
    return {
      error:
        `the first line must declare a tier: \`// tier: <${TIERS.join('|')}>[; needs <command> …]\` ` +
        '(docs/testing.md)',
    };
  if (!TIERS.includes(/** @type {any} */ (m[1])))
    return { error: `unknown tier '${m[1]}' (one of ${TIERS.join(', ')})` };
  return { tier: /** @type {string} */ (m[1]), needs: (m[2] ?? '').split(' ').filter(Boolean) };
}

/**
 * sbin too: freeradius lives in /usr/sbin, which a user's PATH often lacks; and PostgreSQL 15's own programs (initdb,
 * pg_ctl), which Debian keeps out of PATH.
 */
const SEARCH = [
  ...(process.env.PATH ?? '').split(delimiter),
  '/usr/local/sbin',
  '/usr/sbin',
  '/sbin',
  '/usr/lib/postgresql/15/bin',
].filter(Boolean);

/** @param {string} command */
export function onPath(command) {
  for (const dir of SEARCH) {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

/**
 * Why this machine cannot give a test these needs (`root`, or a command name), or null when it can.
 * @param {readonly string[]} needs
 * @returns {string | null}
 */
export function lacking(needs) {
  const missing = needs.filter((n) => (n === 'root' ? process.getuid?.() !== 0 : !onPath(n)));
  if (missing.length === 0) return null;
  return `needs ${missing.map((n) => (n === 'root' ? 'root' : `${n} (not installed)`)).join(', ')}`;
}
