#!/usr/bin/env node
// Runs every test/**/*.test.ts in its own node process (isolation: one leaked handle or crash cannot hide
// another file's result): the lab tier's files two at a time beside the others, cores + 1 at a time at nice 5 (the
// slowest of each first). Prints one closing line "N passed, N failed, N skipped" counted from uvu's per-file totals.
// Each file runs in its own process group (detached: a new session) and the runner signals the whole group, so the
// daemons, brokers and peers a file spawned die with it: on the timeout, when the file exits with children still
// running, and when the runner itself is interrupted. (Node has no PR_SET_PDEATHSIG; a SIGKILL to the file alone
// used to orphan its sluice daemons.) A peer that setsid()s itself (the e2e lab's openNDS) escapes the group; the
// lab removes those itself (lab.sh cleanup-stale).
// Tiers: each file's first line declares its tier and needs (test/helpers/prerequisites.mjs, docs/testing.md):
// `--tier fast` (or fast,daemon; repeatable) runs those tiers only; a file without a declaration is a FAIL that says
// so; a file whose needs this machine lacks is a counted skip (`SKIP <file>: needs …`), and a failure in CI.
// Usage: node test/run.mjs [--tier <tier>[,<tier>]]... [substring or path...]   (a file runs when it matches both; a
// substring or path that matches no file is an error)
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, setPriority, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { bundleTests } from './helpers/bundle.mjs';
import { cpuMs, statFields } from './helpers/proc-stat.mjs';
import { machineIdle, runLanes } from './helpers/lanes.mjs';
import { ThreadHost } from './helpers/thread-pool.mjs';
import { chooseFiles, declaration, inCI, lacking, testFiles, tierArgs } from './helpers/prerequisites.mjs';

const root = new URL('.', import.meta.url).pathname;
const chosenBy = tierArgs(process.argv.slice(2));
if ('error' in chosenBy) {
  console.error(`[run] ${chosenBy.error}`);
  process.exit(2);
}
const { tiers, filters } = chosenBy;
// A hang guard, not a speed check: on a loaded machine the slowest files take several times as long as idle
// (test/daemon/daemon.test.ts: 154 s at load 16, and cut off by the former 180 s bound at load 22).
const FILE_TIMEOUT_MS = Number(process.env.SLUICE_TEST_TIMEOUT_MS ?? 600_000);
const E2E_TIMEOUT_MS = Number(process.env.SLUICE_E2E_TIMEOUT_MS ?? 600_000);

const { chosen: matched, unmatched } = chooseFiles(testFiles(root), root, filters, process.cwd());
if (unmatched.length > 0) {
  console.error(
    `[run] no test file matches ${unmatched.map((s) => `'${s}'`).join(', ')}: give a part of a path under test/ ` +
      '(payments/x402-chain) or a path (test/payments/x402-chain.test.ts)',
  );
  process.exit(2);
}
/** Each matched file's declaration (tier and needs), or why it has none. */
const declared = new Map(matched.map((f) => [f, declaration(readFileSync(f, 'utf8'))]));
const all = matched.filter((f) => {
  const d = declared.get(f);
  return tiers.length === 0 || 'error' in d || tiers.includes(d.tier);
});

/** The newest modification time of a file under dir (0 when there is none). */
function newestUnder(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestUnder(p) : statSync(p).mtimeMs);
  }
  return newest;
}

// The daemon's tiers run the bundle (dist/), which `npm test` has just built; a run of chosen files may find it older
// than the sources it was built from, and would test yesterday's code without a word: it is rebuilt once, here,
// before any file starts (never by the files themselves, which run side by side).
const repo = join(root, '..');
if (all.some((f) => declared.get(f).tier !== 'fast')) {
  const bundle = join(repo, 'dist', 'sluice.mjs');
  const sources = Math.max(...['src', 'workers'].map((d) => newestUnder(join(repo, d))));
  if (!existsSync(bundle) || statSync(bundle).mtimeMs < sources) {
    console.log('[run] dist/ is older than src/: building it first');
    if (spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: repo, stdio: 'inherit' }).status !== 0)
      process.exit(2);
  }
}

/** Grace between SIGTERM and SIGKILL on a timeout: lets a file's exit handlers run (the e2e lab tears itself down). */
const KILL_GRACE_MS = 15_000;
/** Process groups (= pids of the test files) still running, for the runner's own exit. */
const liveGroups = new Set();

/** Signals every process of a group; false when none is left. */
function signalGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Command lines of the live processes in group pgid other than its leader (Linux /proc; empty elsewhere). */
function groupMembers(pgid) {
  const out = [];
  let pids = [];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // pid (comm) state ppid pgrp …: comm may hold spaces and parentheses, so split after the last ')'.
      const [state, , pgrp] = statFields(stat);
      if (Number(pgrp) !== pgid || state === 'Z' || Number(pid) === pgid) continue;
      out.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim().slice(0, 160)}`);
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/**
 * Time each file's processes spent runnable but waiting for a CPU (Linux /proc/<pid>/schedstat's run_delay), per
 * process group, sampled once a second (a process that lives less than that is missed): what a busy machine adds to a
 * file's wall time, so that wall − this approximates the file on an idle machine.
 */
const runQueueNs = new Map(); // pgid → Map(pid → run_delay ns)
function sampleRunQueue() {
  // No file in a process of its own (the fast tier's threads report their own wait): nothing to scan /proc for.
  if (runQueueNs.size === 0) return;
  let pids = [];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const pgrp = Number(statFields(stat)[2]);
      const group = runQueueNs.get(pgrp);
      if (!group) continue;
      group.set(pid, Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]));
    } catch {
      /* gone meanwhile */
    }
  }
}
setInterval(sampleRunQueue, 1000).unref();

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    console.log(`\n[run] ${sig}: stopping ${liveGroups.size} running file(s)`);
    process.exit(130);
  });
}
process.on('exit', () => {
  for (const pgid of liveGroups) signalGroup(pgid, 'SIGKILL');
});

const totals = { passed: 0, failed: 0, skipped: 0, cpuMs: 0, runQueueMs: 0 };
/** The fast files' threads: files that ran in a thread another file had run, and what files left behind. */
const reuse = { reused: 0, left: [] };
const runStarted = Date.now();
/** The failed files with their reasons, named and said again at the end of the run (whyFailed). */
const failures = [];
const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

/** Where each file's process writes its CPU time at exit (test/helpers/cpu-time.mjs). */
const cpuDir = mkdtempSync(join(tmpdir(), 'sluice-run-cpu-'));
process.on('exit', () => rmSync(cpuDir, { recursive: true, force: true }));
let fileNo = 0;

/**
 * A failed file's own reasons, short: each of uvu's FAIL blocks (the test's name, the message, the first lines of its
 * details and stack), the runner's timeout line; else the output's last lines (a crash before uvu reported).
 */
function whyFailed(text, timedOut) {
  const lines = text.split('\n');
  const why = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*FAIL\s/.test(lines[i])) continue;
    // The block runs to uvu's totals or the next FAIL; its stack is cut after the third frame.
    const block = [lines[i]];
    let frames = 0;
    for (let j = i + 1; j < lines.length && block.length < 16 && frames < 3; j++) {
      if (/^\s*(FAIL\s|Total:)/.test(lines[j])) break;
      if (lines[j].trim() === '') continue;
      if (/^\s+at /.test(lines[j])) frames++;
      block.push(lines[j]);
    }
    why.push(...block);
  }
  if (timedOut) why.push(...lines.filter((l) => l.startsWith('[run] timed out')));
  return (why.length > 0 ? why : lines.filter((l) => l.trim() !== '').slice(-8)).join('\n');
}

/** The CPU time (user + sys, ms) from the file's exit figures, or null when it wrote none (killed). */
function cpuOf(cpuFile) {
  try {
    const [user, sys] = readFileSync(cpuFile, 'utf8').trim().split(' ').map(Number);
    return user + sys;
  } catch {
    return null;
  }
}

/** The CPU time (ms) of this process and of the children it reaped: every file, the bundler, the fast files' host. */
function ownCpuMs() {
  try {
    return cpuMs(readFileSync('/proc/self/stat', 'utf8'), true);
  } catch {
    return NaN;
  }
}

/**
 * openNDS 10.3.1 dies of SIGFPE (exit status 136 under the lab's supervisor) when an auth lands in the second after its
 * check loop read the clock and before the loop reaches that client: src/auth.c divides by (now - window_start) + 1,
 * which is 0 then (docs/captive-portal.md, "Portal restarts"). A lab file that failed while its portal died so runs
 * once more, from a fresh lab, and says so; a second failure stands.
 */
const PORTAL_SIGFPE = '[lab] the portal exited (status 136) without being asked';

/**
 * Lowers a file's CPU weight against the lab. The file leads a session of its own (detached), and with the kernel's
 * autogroup on (Debian's default, /proc/sys/kernel/sched_autogroup_enabled) every session is a scheduling group of its
 * own whose weight is the group's nice, not its processes': a process's nice then counts only against its own
 * session. Measured here, two busy loops in two sessions on one core: nice 10 on one process split the core 149:147
 * ticks, nice 10 on its session's autogroup 265:28, nice 5 224:73. So the autogroup's nice is set, and the process's
 * too for a kernel without autogroup; the daemons and peers the file spawns share its session and so its weight.
 */
function lowerPriority(pid, nice) {
  try {
    setPriority(pid, nice);
  } catch {
    // not allowed here: the file runs at the runner's priority
  }
  try {
    writeFileSync(`/proc/${pid}/autogroup`, `${nice}`);
  } catch {
    // no autogroup (kernel built without it, or the file has exited already): the process's nice is what counts
  }
}

/**
 * Runs one file in a node process of its own, in its own process group.
 * @returns {Promise<{ text: string, code: number | null, signal: string | null, timedOut: boolean, cpuMs: number |
 *   null, runqMs: number }>}
 */
function runProcess(file, timeoutMs, nice) {
  return new Promise((resolve) => {
    const cpuFile = join(cpuDir, `${++fileNo}`);
    const cpuTime = ['--import', join(root, 'helpers', 'cpu-time.mjs')];
    const bundle = bundled.get(file);
    const args = bundle
      ? ['--import', join(root, 'helpers', 'lazy-source-maps.mjs'), ...cpuTime, bundle]
      : ['--import', 'tsx', '--import', join(root, 'helpers', 'uvu-hook-errors.mjs'), ...cpuTime, file];
    const child = spawn(process.execPath, args, {
      cwd: join(root, '..'),
      env: {
        ...process.env,
        ...(bundle ? fastEnv : {}),
        NO_COLOR: '1',
        FORCE_COLOR: '0',
        SLUICE_TEST_CPU_FILE: cpuFile,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const pgid = child.pid;
    if (nice > 0) lowerPriority(pgid, nice);
    liveGroups.add(pgid);
    runQueueNs.set(pgid, new Map());
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    let grace;
    let timedOut = false;
    let runqMs = 0;
    const timer = setTimeout(() => {
      timedOut = true;
      out +=
        `\n[run] timed out after ${timeoutMs} ms: SIGTERM to its process group, SIGKILL ${KILL_GRACE_MS} ms ` +
        `later\n`;
      signalGroup(pgid, 'SIGTERM');
      grace = setTimeout(() => signalGroup(pgid, 'SIGKILL'), KILL_GRACE_MS);
    }, timeoutMs);
    // On 'exit' rather than 'close': a leftover child holding the file's stdout would hold off 'close' forever.
    child.once('exit', () => {
      const waited = [...(runQueueNs.get(pgid)?.values() ?? [])].reduce((a, ns) => a + ns, 0);
      runqMs = Math.round(waited / 1e6);
      runQueueNs.delete(pgid);
      clearTimeout(timer);
      clearTimeout(grace);
      const left = groupMembers(pgid);
      signalGroup(pgid, 'SIGKILL');
      if (left.length > 0) {
        console.log(
          `[run] ${relative(root, file)} left processes running; killed:\n${left.map((l) => `     ${l}`).join('\n')}`,
        );
      }
      liveGroups.delete(pgid);
    });
    child.on('close', (code, signal) => {
      resolve({ text: out, code, signal, timedOut, cpuMs: cpuOf(cpuFile), runqMs });
    });
  });
}

/**
 * Whether a fast file declares, among its first lines, that it needs a thread of its own (`// thread: its own`): one
 * that measures its isolate as a whole (its heap), where the files a reused thread ran before would count.
 */
const ownThread = (file) => /^\/\/ thread: its own\b/m.test(readFileSync(file, 'utf8').slice(0, 1000));

async function runFile(file, timeoutMs, nice = 0, rerun = false) {
  const started = Date.now();
  const bundle = bundled.get(file);
  const host = threads?.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  const run =
    bundle && host ? await host.run(bundle, timeoutMs, ownThread(file)) : await runProcess(file, timeoutMs, nice);
  const { code, signal, timedOut, cpuMs, runqMs } = run;
  totals.cpuMs += cpuMs ?? 0;
  totals.runQueueMs += runqMs;
  if (run.files > 1) reuse.reused++;
  if (run.left) reuse.left.push(`${relative(root, file)}: ${run.left.join(', ')}`);
  const text = strip(run.text);
  const n = (label) => {
    const m = [...text.matchAll(new RegExp(`${label}:\\s+(\\d+)`, 'g'))];
    return m.reduce((a, x) => a + Number(x[1]), 0);
  };
  const total = n('Total'),
    passed = n('Passed'),
    skipped = n('Skipped');
  // uvu exits 0 when a before/after hook throws, reporting the file's tests as neither passed nor skipped.
  // Its Total counts the tests that ran: test.skip() ones are only in Skipped.
  // A file whose every test is a counted skip (a missing prerequisite: test/helpers/skip.ts) ran nothing and
  // passes.
  const clean = !timedOut && code === 0 && signal === null;
  const ok = clean && (total > 0 ? passed === total : skipped > 0);
  if (!ok && !rerun && text.includes(PORTAL_SIGFPE)) {
    console.log(
      `[run] ${relative(root, file)} failed while openNDS died of SIGFPE (its own race): run once more; the ` +
        `first run said:\n${text.replace(/^/gm, '     | ')}`,
    );
    return runFile(file, timeoutMs, nice, true);
  }
  const failed = ok ? 0 : Math.max(1, total - passed);
  totals.passed += passed;
  totals.skipped += skipped;
  totals.failed += failed;
  const name = relative(root, file);
  const ms = Date.now() - started;
  const counts = `${passed}/${total} passed${skipped ? `, ${skipped} skipped` : ''}`;
  const cpu = cpuMs === null ? '' : `, cpu ${cpuMs} ms`;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name} (${counts}, ${ms} ms${cpu}, runq ${runqMs} ms)`);
  if (!ok) failures.push({ name, why: whyFailed(text, timedOut) });
  if (!ok || process.env.SLUICE_TEST_VERBOSE) {
    console.log(text.replace(/^/gm, '     | '));
  } else {
    // Figures and skip reasons are worth seeing even when green.
    for (const line of text.split('\n'))
      if (/^\s*(# |SKIP |\[e2e\]|\[bench\])/.test(line)) console.log(`     ${line.trim()}`);
  }
}

/**
 * Runs `files` `concurrency` at a time; `beside`: which may run beside them while a core idles (lanes.mjs). Resolves
 * with how many did.
 */
function pool(files, concurrency, timeoutMs, nice = 0, beside = null) {
  return runLanes(files, { lanes: concurrency, run: (f) => runFile(f, timeoutMs, nice), ...beside });
}

// Before anything runs: a file that declares no tier fails (it would drop out of every tier run; picked by name, it
// runs with a notice), and a file whose needs this machine lacks is a skip, counted once, or a failure in CI, which
// installs every need a file names.
const runnable = [];
for (const f of all) {
  const d = declared.get(f);
  const name = relative(root, f);
  const why = 'error' in d ? null : lacking(d.needs);
  if ('error' in d && filters.length > 0 && tiers.length === 0) {
    // Picked by name: runs (a new file is tried before it is declared), and says what a full run will say.
    console.log(`[run] ${name}: ${d.error}; a full or --tier run fails it`);
    runnable.push(f);
  } else if ('error' in d) {
    totals.failed++;
    failures.push({ name, why: d.error });
    console.log(`FAIL ${name}: ${d.error}`);
  } else if (why && inCI) {
    totals.failed++;
    failures.push({ name, why: `CI=${process.env.CI} and the ${d.tier} tier ${why}; .ci/run installs it` });
    console.log(`FAIL ${name}: ${failures.at(-1).why}`);
  } else if (why) {
    totals.skipped++;
    console.log(`SKIP ${name}: ${d.tier} tier, ${why}`);
  } else runnable.push(f);
}
const lab = runnable.filter((f) => {
  const d = declared.get(f);
  return 'error' in d ? relative(root, f).startsWith('e2e/') : d.tier === 'lab';
});
const unit = runnable.filter((f) => !lab.includes(f));

// The fast tier's files run from one bundle of them (test/helpers/bundle.mjs: no TypeScript loader in each file's
// process); the other tiers' through tsx, as do all with SLUICE_TEST_LOADER=tsx. A bundle that cannot be built (a
// syntax error) leaves every file to tsx, so each reports its own failure.
/** Each fast file's bundled module. */
const bundled = new Map();
/** A bundle's path in each slot of its build (bundleTests), for a thread's later files. */
let slotsOf = () => [];
const fast = unit.filter((f) => !('error' in declared.get(f)) && declared.get(f).tier === 'fast');
if (fast.length > 0 && process.env.SLUICE_TEST_LOADER !== 'tsx') {
  const started = Date.now();
  try {
    const { outputs, built, slots } = await bundleTests(fast, join(root, '..'));
    for (const [file, out] of outputs) bundled.set(file, out);
    slotsOf = slots;
    console.log(`[run] ${fast.length} fast files ${built ? 'bundled' : 'bundle reused'} in ${Date.now() - started} ms`);
  } catch (err) {
    console.log(`[run] bundling the fast files failed, they run through tsx:\n${String(err?.message ?? err)}`);
  }
}

/** statfs's f_type of a tmpfs (linux/magic.h). */
const TMPFS_MAGIC = 0x01021994;
/**
 * The fast files' temporary directory (their TMPDIR), on a tmpfs when the machine has one (/dev/shm): the fast tier
 * reads and writes temp files for its logic, and on a disk each fsync of the damage suites' thousands of reopens waited
 * for the disk (journal-damage: 12 s of its 14 s idle). The other tiers keep the disk a router's state sits on; the
 * full-flash tests mount a tmpfs of their own. Removed at the end of the run, with whatever a file left in it.
 * SLUICE_TEST_TMPFS=0 keeps the fast files on the default temporary directory.
 */
function fastTmpDir() {
  if (process.env.SLUICE_TEST_TMPFS === '0') return null;
  try {
    if (statfsSync('/dev/shm').type !== TMPFS_MAGIC) return null;
    const dir = mkdtempSync('/dev/shm/sluice-fast-');
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  } catch {
    return null;
  }
}
const fastTmp = bundled.size > 0 ? fastTmpDir() : null;
const fastEnv = fastTmp === null ? {} : { TMPDIR: fastTmp };

// The slowest files start first, so a pool does not end on one long file while its other lanes idle: longest first
// by their idle times as scripts/test-time.mjs estimates them from a run. A hint only: a file that is not listed (or
// a name that went stale) runs in its alphabetical place after the listed ones.
const SLOW_FIRST = [
  // lab, idle estimates (docs/testing.md "The suite's time"): 80, 74, 57, 50, 46, 39, 35, 34, 29 s
  'e2e/resilience',
  'e2e/data',
  'e2e/rates',
  'e2e/tollgate',
  'e2e/devices',
  'e2e/phone-cashu',
  'e2e/trial',
  'e2e/phone.test',
  'e2e/phone-restore',
  // the others: 34 s down to 12 s
  'payments/method-suite-chain',
  'daemon/daemon.test',
  'escrow/session-chain',
  'upstream/radius/accounting',
  'http/batch-settlement-http',
  'daemon/first-bytes-crash',
  'portal/valve',
  'daemon/sessions-paging',
  'upstream/hook-bounded',
  'payments/cashu-daemon',
  'payments/x402-chain',
  'http/tollgate-clients',
  'portal/kernel-quota.test',
  'http/batch-page-chain',
  'demo/demo',
  'http/cashu-pay-page',
  // the fast tier's longest by their idle times (wall less the wait for a CPU, at least the CPU; medians of five whole
  // runs, load 2-12: 8.9 s down to 1.9 s), so that a fast run does not end on one of them; the waiting ones among
  // them (WAITING below) take this order among themselves, beside the lanes (test/helpers/lanes.mjs). The
  // architecture tests come early as one of them parses src/ with TypeScript after an edit (~5 s of CPU; the other
  // waits for its facts: test/helpers/syntax-cache.ts).
  'gate/gatekeeper',
  'portal/nft-scan',
  'architecture.test',
  'portal/accept-nudge',
  'peers/cashu-mint.test',
  'architecture-functions',
  'thread-host',
  'venue/theme-claim',
  'portal/socket',
  'portal/sim-portal',
  'ubus/client.test',
  'payments/cashu-ledger-damage',
  'meter/address-book',
  'escrow/ledger.test',
  'payments/cashu-cap',
  'payments/cashu-payout',
  'http/pay-page',
  'payments/cashu.test',
];
// The fast files that wait on the timers or peers they assert for most of their wall, with little CPU (quiet whole
// runs, 2026-11-30 18:29-18:34: wall/CPU in s): gatekeeper 9.6/0.4, accept-nudge 3.9/0.1, theme-claim 3.2/0.4, socket
// 2.9/0.1, http-client 2.6/0.1, ubus/client 2.4/0.2, address-book 2.3/0.1, stream-tick 1.7/0.2, binauth-watch 1.3/0.1,
// mac-resolver 1.2/0.2, endpoint-limits 1.2/0.2. In a lane, two of them at once left a core idle; they run beside the
// lanes instead (test/helpers/lanes.mjs `waits`), the lanes kept for the files that compute.
const WAITING = [
  'gate/gatekeeper',
  'portal/accept-nudge',
  'venue/theme-claim',
  'portal/socket',
  'http-client',
  'ubus/client.test',
  'meter/address-book',
  'meter/stream-tick',
  'portal/binauth-watch',
  'gate/mac-resolver',
  'http/endpoint-limits',
];
const waits = (f) => WAITING.some((w) => relative(root, f).startsWith(w));
const rank = (f) => {
  const i = SLOW_FIRST.findIndex((s) => relative(root, f).startsWith(s));
  return i < 0 ? SLOW_FIRST.length : i;
};
for (const list of [lab, unit]) list.sort((a, b) => rank(a) - rank(b));
// The unit files wait on peers, daemons and timers more than they compute: one lane more than the machine has
// cores. The lab's files, two at a time (labs coexist: random namespace ids) and beside the unit files from the start.
const jobs = Number(process.env.SLUICE_TEST_JOBS ?? availableParallelism() + 1);
const labJobs = Number(process.env.SLUICE_LAB_JOBS ?? 2);
// Beside those lanes, more fast files (threads of the hosts) while a core is idle, up to this many at once: a fast file
// that waits on its timers then holds no core another could use (test/helpers/lanes.mjs).
const mostJobs = Number(process.env.SLUICE_TEST_MAX_JOBS ?? 2 * jobs);
// Beside the lab, the unit files run at a lower CPU priority (nice 5 on their sessions, lowerPriority: a third of a lab
// session's weight when both want a core, 224:73 ticks in the measure above): the lab's openNDS, daemons and shaped
// links keep closer to an idle router's timing, and the unit files still take every cycle the lab leaves (it mostly
// waits on its 8 Mbit/s links). At equal weight the lab's waits ran out, a different lab file each run; at nice 10
// (a tenth) a unit file waited 67 s for a CPU in 77 s and its 2 s facilitator timeout ran out.
const unitNice = lab.length > 0 ? Number(process.env.SLUICE_UNIT_NICE ?? 5) : 0;
// The bundled files run in worker threads (test/helpers/thread-host.mjs: a fresh module graph per file, a thread run
// on by the next file while each leaves nothing behind, without a node process's start and exit per file): one
// long-lived process per lane of the unit pool, each a session and process group of its own at the unit files'
// priority, as a file's own process was; SLUICE_TEST_THREADS=0 runs each file in a process of its own instead, and
// SLUICE_TEST_REUSE=0 each in a new thread.
const threads =
  bundled.size > 0 && process.env.SLUICE_TEST_THREADS !== '0'
    ? Array.from(
        { length: jobs },
        () =>
          new ThreadHost({
            cwd: join(root, '..'),
            // ESBUILD_WORKER_THREADS=0: esbuild's synchronous API (test/helpers/bundled-module.ts) runs its binary
            // for each call, where it would keep a worker thread of its own, unref'd, for the next: a leftover that
            // ended the file's thread (test/helpers/thread-leftovers.mjs).
            env: { ...process.env, ...fastEnv, ESBUILD_WORKER_THREADS: '0', NO_COLOR: '1', FORCE_COLOR: '0' },
            slots: process.env.SLUICE_TEST_REUSE === '0' ? () => [] : slotsOf,
            started(pid) {
              if (unitNice > 0) lowerPriority(pid, unitNice);
              liveGroups.add(pid);
            },
            ended(pid) {
              const left = groupMembers(pid);
              signalGroup(pid, 'SIGKILL');
              if (left.length > 0)
                console.log(`[run] the fast files left processes; killed:\n${left.map((l) => `     ${l}`).join('\n')}`);
              liveGroups.delete(pid);
            },
          }),
      )
    : null;
let unitMs = 0;
let labMs = 0;
let besideLanes = 0;
await Promise.all([
  pool(
    unit,
    jobs,
    FILE_TIMEOUT_MS,
    unitNice,
    threads && {
      most: mostJobs,
      beside: (f) => bundled.has(f),
      waits,
      idle: machineIdle(availableParallelism()),
    },
  ).then((n) => {
    unitMs = Date.now() - runStarted;
    besideLanes = n;
  }),
  pool(lab, labJobs, E2E_TIMEOUT_MS).then(() => {
    labMs = Date.now() - runStarted;
  }),
]);
/** The thread hosts' CPU, split by thread (ThreadHost.cpuSplitMs). */
const hostCpu = { main: 0, helpers: 0, files: 0 };
let peakRssKb = 0;
for (const split of await Promise.all((threads ?? []).map((t) => t.close()))) {
  for (const key of Object.keys(hostCpu)) hostCpu[key] += split?.[key] ?? 0;
  peakRssKb = Math.max(peakRssKb, split?.peakRssKb ?? 0);
}
if (failures.length) console.log(`\nfailed files: ${failures.map((f) => f.name).join(', ')}`);
// Again at the end, each failure's own words: a failed lab file's output is long (its peers' logs), and a reader of
// only the log's last lines (a CI summary) must still see which assertion failed and why.
for (const { name, why } of failures) console.log(`\n[run] why ${name} failed:\n${why.replace(/^/gm, '     | ')}`);
const wall = (ms) => `${(ms / 1000).toFixed(1)} s`;
console.log(
  `\n[run] wall ${wall(Date.now() - runStarted)} (unit ${wall(unitMs)}, lab ${wall(labMs)}), files' ` +
    `cpu ${wall(totals.cpuMs)}, ` +
    `waiting for a cpu ${wall(totals.runQueueMs)}; the run's cpu ${wall(ownCpuMs())} (runner, bundler, files)`,
);
if (threads)
  console.log(
    `[run] the fast files' hosts: cpu ${wall(hostCpu.files)} in the files' threads, ${wall(hostCpu.helpers)} in ` +
      `V8's and libuv's helper threads, ${wall(hostCpu.main)} in their main threads; ${besideLanes} files ` +
      `started beside the ${jobs} lanes (waiting ones, or while a core idled); ${reuse.reused} files ran in a thread ` +
      `that had run another, ${reuse.left.length} left something behind and ended theirs; a host's peak RSS ` +
      `${Math.round(peakRssKb / 1024)} MB` +
      (process.env.SLUICE_TEST_VERBOSE ? `:\n${reuse.left.map((l) => `     ${l}`).join('\n')}` : ''),
  );
console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed > 0 || all.length === 0 ? 1 : 0);
