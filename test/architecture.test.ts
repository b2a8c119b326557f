// tier: fast
/**
 * The rule test for the shape of src/ and workers/ (DESIGN.md "Layout", docs/architecture.md): no folder-level import
 * cycle; every import from outside a folder goes through that folder's index.ts; every name an index.ts exports is
 * imported by some file of src/ or workers/ outside that folder (tests and benches import what they test from its
 * file); no file over 600 lines, one of 400 to 600 lines has its reason in SIZE_REASONS, and one over 550 is named
 * with why it is one idea in docs/architecture.md. The checker is test/helpers/import-graph.ts, tried first on a
 * synthetic graph so that this test can fail. ALLOWED, KEPT_EXPORTS and
 * SIZE_REASONS list what remains, each with its reason; an entry that no longer applies fails the test too, so the
 * lists only shrink.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REGISTERED } from '../src/payments/plugins.ts';
import {
  checkImports,
  describeCycle,
  describeFileCycle,
  exportedNames,
  fileCycles,
  importedNames,
  relativeSpecifiers,
  resolveSpecifier,
  type ImportEdge,
} from './helpers/import-graph.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const SRC = join(ROOT, 'src/');
/** Read like src/: the Piscina worker's entry points, whose imports obey the same rules (a folder named `workers`). */
const WORKERS = join(ROOT, 'workers/');

interface AllowedDeep {
  file: string;
  specifier: string;
  reason: string;
}
interface AllowedCycle {
  folders: string[];
  reason: string;
}

const LAZY =
  "a lazy entry point: the demo's simulated ndsctl client is its own short-lived process, and loading demo/index.ts " +
  'would initialise the whole daemon for every simulated ndsctl call';
const BROKER =
  'the embedded ubus broker, run only by `sluice ubusd` and the demo: through ubus/index.ts the daemon would load ' +
  "it at start (esbuild's splitting puts a module where every importer reaches it; docs/performance.md, " +
  'Idle memory)';
const WORKER =
  'the worker thread loads only what a tick runs: meter/index.ts would also load the tick loop, the pool ' +
  '(Piscina) and through them sessions/ and config/ into every worker thread (and the dist/usage-worker.mjs bundle)';
const OWN_GATE =
  "sluice's own gate (main.portal 'sluice'), read by gate/portal.ts only under that portal: through portal/index.ts " +
  "esbuild's splitting would put its code where every importer of portal/ reaches it, loaded at every start " +
  '(docs/performance.md, Idle memory)';
const MINT_URL =
  "a mint URL's one spelling, all the config needs of cashu/: through cashu/index.ts every start would load the " +
  'Cashu library (tokens, mint clients, LNURL) that only the tollgate section runs (docs/performance.md, Idle memory)';

/**
 * Violations that remain, each with its reason; an entry that no longer happens fails the test, so the list only
 * shrinks.
 */
const ALLOWED: { deep: AllowedDeep[]; cycles: AllowedCycle[] } = {
  deep: [
    { file: 'src/main.ts', specifier: './demo/ndsctl-client.ts', reason: LAZY },
    { file: 'src/main.ts', specifier: './ubus/broker/index.ts', reason: BROKER },
    { file: 'src/demo/index.ts', specifier: '../ubus/broker/index.ts', reason: BROKER },
    { file: 'src/fleet/demo/routers.ts', specifier: '../../ubus/broker/index.ts', reason: BROKER },
    { file: 'src/gate/own-gate.ts', specifier: '../portal/own-gate.ts', reason: OWN_GATE },
    { file: 'src/gate/own-gate.ts', specifier: '../portal/own-gate-nft.ts', reason: OWN_GATE },
    { file: 'src/gate/own-gate.ts', specifier: '../portal/own-gate-server.ts', reason: OWN_GATE },
    { file: 'src/gate/own-valve.ts', specifier: '../portal/own-gate.ts', reason: OWN_GATE },
    { file: 'src/config/tollgate.ts', specifier: '../cashu/mint-url.ts', reason: MINT_URL },
    { file: 'workers/usage.ts', specifier: '../src/meter/epochs.ts', reason: WORKER },
    { file: 'workers/usage.ts', specifier: '../src/meter/task.ts', reason: WORKER },
    { file: 'workers/usage.ts', specifier: '../src/meter/kernel-task.ts', reason: WORKER },
  ],
  cycles: [],
};

const WHOLE_MODULES =
  'the folder exports these modules whole (export *), so names no other folder uses are on its surface; naming ' +
  "the index's exports trims them";

/**
 * Names an index.ts exports that no file of src/ or workers/ outside its folder imports, each kept with its reason
 * (tests do not count: they import what they test from its file). A name that becomes used, or is no longer exported,
 * fails the test: remove it here.
 */
const KEPT_EXPORTS: { index: string; names: string[]; reason: string }[] = [
  {
    index: 'src/gate/index.ts',
    reason: WHOLE_MODULES,
    names: [
      'GateValve',
      'CloseOutcome',
      'GateEvents',
      'GateKernelQuota',
      'GatekeeperOptions',
      'RateShaper',
      'ReconcileReport',
      'LISTING_RETRY_MS',
      'LISTING_WAIT_MS',
      'LISTING_WAITERS',
      'safetyNetFor',
    ],
  },
  {
    index: 'src/meter/index.ts',
    reason: WHOLE_MODULES,
    names: [
      'MeterOptions',
      'TickReport',
      'MeterStats',
      'ExclusivePort',
      'KernelQuotaPort',
      'MeteredSession',
      'ReadClient',
      'SessionsPort',
      'UsageTaskRunner',
      'createAdaptiveRunner',
      'createInlineRunner',
      'createPoolRunner',
      'defaultWorkerPath',
      'AdaptiveOptions',
      'PoolOptions',
      'SkipReason',
      'UsageResult',
      'UsageTask',
      'ManagedSessionsPort',
      'ManagerForMeter',
    ],
  },
  {
    index: 'src/portal/index.ts',
    reason: WHOLE_MODULES,
    names: [
      'GateBrake',
      'GateCounter',
      'GateShaper',
      'FORMATS',
      'PortalFormat',
      'normalizeMac',
      'tryNormalizeMac',
      'detectFlavour',
      'parseClient',
      'parseSnapshot',
      'PortalParseError',
      'ClientSink',
      'ScanOutcome',
      'FallbackOutcome',
      'openNdsAuthArgs',
      'UNLIMITED_QUOTA_KIB',
      'UNLIMITED_SESSION_MINUTES',
      'NDSCTL_EXIT',
      'SpawnFn',
      'NdsctlRunner',
      'NdsctlExec',
      'NdsctlPriority',
      'NdsctlResult',
      'NdsctlRunnerOptions',
      'STOCK_NDSCTL',
      'DEFAULT_SOCKET_PATHS',
      'findPortalSocket',
      'socketOutcome',
      'socketRequest',
      'FetchOptions',
      'declaredClientCount',
      'DEFAULT_OUTPUT_CAP',
      'outputBound',
      'CloseResult',
      'OpenResult',
      'ValveOptions',
      'counterTableLines',
      'counterTableScript',
      'countLines',
      'uncountLines',
      'parseCounterTable',
      'upCounterName',
      'downCounterName',
      'KernelCountersOptions',
      'NO_RATES',
      'RATE_REASON',
      'RateParse',
      'SHAPER_TABLE',
      'ShaperOptions',
    ],
  },
];

/** Past this a file is split; the figure the files squeezed under (599, 594, 593…) is the reason for the band below. */
const MAX_LINES = 600;
/** From here to MAX_LINES a file has its reason here (STYLE.md: split a file that passes ~400 lines). */
const REASON_LINES = 400;
/** Files of 400 to 600 lines (src/ and workers/) and why each is one file; an entry out of the band fails the test. */
const SIZE_REASONS: Record<string, string> = {
  'src/upstream/mqtt/messages.ts':
    "one wire format: every MQTT message's builder (usage rows patched in place, session events, status, " +
    'replies) shares the envelope and the encodings, which docs/mqtt.md describes field by field',
  'src/meter/epochs.ts':
    'one class, the accountant: the per-MAC epoch rules over the shared table (observe, promote, finish) and ' +
    "a tick's undo around them, which read the same slots; the undo log is already apart (pending-log.ts)",
  'src/radius/packet.ts':
    'one wire format (RFC 2865/2866/5176) and the authenticators it is checked with: the encoder, the ' +
    'decoder and the Message-Authenticator rules per packet type are read together when the RFC is',
  'src/upstream/radius/accounting.ts':
    "one sink's lifecycle (Start, Interims on a timer, one Stop ever) over the outbox and " +
    "the ack log; what a session's records say (session-records.ts) and the packet building (records.ts and the " +
    'radius/ codec) are apart',
  'src/upstream/mqtt/sink.ts':
    "one sink's lifecycle: the connection, the outbox's delivery, the retained status and the " +
    "command channel's wiring; connection.ts (connecting, what needs a new connection, the clean end), direct.ts, " +
    'reports.ts, command-channel.ts and what each publish goes out with (publish-options.ts) hold the parts',
  'src/upstream/outbox.ts':
    "the outbox's one class (append, group commit, per-consumer floors, recovery order); codec, " +
    'segments (and the bound step), marks, sync, what opening reads (outbox-open), what each consumer still owes ' +
    '(outbox-consumers) and its options and figures (outbox-types) are apart',
  'src/sessions/manager.ts':
    'the one owner of sessions in memory: recovery, activation, the ends and the reads share ' +
    'its registry, deadline scheduler and phase; what it decides with and the writes of one kind of change are apart ' +
    '(admission, purchase, sales, limits, changes, reads, background-writes, billing, device-joins, moves, ' +
    'end-replay), and what it answers without a change is the class it extends (queries.ts)',
  'src/payments/exact/x402-exact.ts':
    "one scheme's steps of the x402 purchase pipeline (payments/x402-purchase.ts) and what each facilitator answer " +
    'means for the money; what it waits on, an unanswered settle decided and granted late, is settle-resolver.ts, ' +
    'what the facilitator is asked requirements.ts and the proof of a settle x402-resolve.ts',
  'src/payments/escrow-session/x402-session.ts':
    "one scheme's steps of the x402 purchase pipeline, what a create's answer (or silence) means for the deposit, " +
    'and the receipts and views over its ledger; what it waits on, the pass of late grants, consumes and closes, ' +
    'is close-pass.ts; the deposit checks (deposit-check.ts), the terms and the credit rule are apart',
  'src/payments/upto/x402-upto.ts':
    "one scheme's steps of the x402 purchase pipeline and its Permit2 terms: what a purchase may be, from the " +
    "facilitator's /supported to the authorization on flash; the settle at the session's end (settler.ts) and the " +
    "ends' policy (x402-upto-ends.ts) are apart",
  'src/config/load.ts':
    'the typed loader: every section read into Config with one problem list and one policy for the valid part ' +
    '(configFromUciPartial); the value parsers (values.ts) and the reading of the files (load-file.ts) are apart',
  'src/payments/cashu/tollgate/door.ts':
    "TollGate's one door: its routes (the 10021, the payment, whoami, usage, balance, CORS) share the per-IP " +
    "buckets, the connection bounds and the signing of every answer; the payment's parsing " +
    '(payment.ts), the event codes (events.ts) and its opening, moving and closing (keeper.ts) are apart',
  'src/meter/cut-planner.ts':
    'one prediction per data session: the crossing, the aimed tick, the bill-ahead and the cut between ticks ' +
    'share its per-session state, and are read together',
  'src/meter/tick-loop.ts':
    'the tick: dispatch, commit, billing and the report share the committed table and the ordering its billing ' +
    'rules (the header) depend on; when it runs (tick-scheduler), what it waits on (tick-dispatch), the ' +
    'pool, the cut planner and the kernel mode are apart',
  'src/payments/cashu/cashu.ts':
    "one method's money path: precheck, authorize (the intent on flash, the swap, the proofs on flash) and the " +
    "late resolution share its swaps in flight, in the order of docs/tollgate.md's crash table; what a token buys " +
    '(token-pricing), what it waits on at the mint (mint-reads), the room (balance-room) and invoices are apart',
  'src/payments/batch-settlement/x402-batch.ts':
    "one money path's I/O: precheck, authorize (a deposit's /settle) and the charge at a session's end share the " +
    "channel locks and the store; what a voucher and a session's end decide is x402-batch-charges.ts, the rules, " +
    'the intent, the refund request, the answers and the settler are apart',
  'src/portal/kernel-quota.ts':
    "the kernel quota's keeper: the installed quotas, the serialised batches and the rebuild after a failed " +
    'one share its one view of the table; the nft scripts and parsers (kernel-quota-nft.ts), the shared ' +
    "purchase's split rule (kernel-quota-share.ts) and the command runner (nft-run.ts) are apart",
  'src/portal/nft-scan.ts':
    "one wire format (nft's counter dump): each item's fast path for nft's exact layout beside the general reading " +
    'it must agree with, read together; the JSON cursor and the result (json-cursor, counter-dump) are apart',
  'src/portal/scan.ts':
    "one wire format (ndsctl json's subset): the envelope, the client entries and the state that lets a reply " +
    'be read as it arrives resume each other; the lexical pieces (scan-lex.ts) and the fallback are apart',
  'src/portal/runner.ts':
    'one ndsctl queue: the FIFO, the bounded attempt, the busy retry and the socket path share its ' +
    "one-at-a-time state; which call goes next (call-order.ts), what a call's end means (ndsctl-outcome.ts), " +
    'spawning (command.ts) and the socket transport (socket-transport.ts) are apart',
  'src/sessions/journal.ts':
    'the journal store: appends with group commit, compaction and the recovery from a failed write are one ' +
    "crash-ordering argument over its handle and generation; the start's read (journal-start.ts) and the " +
    'record codec (journal-codec.ts) are apart',
};

/** Files over MAX_LINES, each with its reason; an entry that shrinks under the limit fails the test. */
const OVER_LIMIT: Record<string, string> = {};

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  // The listing's own entry types: no stat per entry (a link would be neither, as statSync's isDirectory followed it).
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const path = join(dir, entry.name);
    const kind = entry.isSymbolicLink() ? statSync(path) : entry;
    if (kind.isDirectory()) out.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Each file's text, read once for the tests that read it (read-only: nothing here writes a source). */
const texts = new Map<string, string>();
function sourceText(path: string): string {
  let text = texts.get(path);
  if (text === undefined) texts.set(path, (text = readFileSync(path, 'utf8')));
  return text;
}

/**
 * A file's key in the graph: its path under src/ ('payments/grant.ts'), or under the repository for workers/
 * ('workers/usage.ts', so workers/ is one more folder); null outside both.
 */
function keyOf(path: string): string | null {
  // Every path asked is absolute and normalized (join, resolve): its key is what follows the folder's own path.
  if (path.startsWith(SRC)) return path.slice(SRC.length);
  if (path.startsWith(WORKERS)) return path.slice(ROOT.length);
  return null;
}
const shown = (key: string): string => (key.startsWith('workers/') ? key : `src/${key}`);

/** What each resolved path names, looked up once: the tests read ~6,000 specifiers, most of them several times. */
const resolved = new Map<string, string | null>();
function resolveFile(from: string, specifier: string): string | null {
  const base = resolve(dirname(from), specifier);
  let file = resolved.get(base);
  if (file === undefined) {
    const candidates = [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')];
    file = candidates.find((c) => statSync(c, { throwIfNoEntry: false })?.isFile() === true) ?? null;
    resolved.set(base, file);
  }
  return file;
}

/** The files of src/ and workers/, listed once for the tests that read them all. */
let house: string[] | undefined;
function houseFiles(): string[] {
  assert.not.ok(existsSync(join(SRC, 'workers')), 'src/workers would share its key with workers/');
  return (house ??= [...sourceFiles(SRC), ...sourceFiles(WORKERS)]);
}

/** The import graph of src/ and workers/, read once for the tests that check it (read-only). */
let graphRead: { edges: ImportEdge[]; unresolved: string[] } | undefined;
function srcEdges(): { edges: ImportEdge[]; unresolved: string[] } {
  return (graphRead ??= readSrcEdges());
}

function readSrcEdges(): { edges: ImportEdge[]; unresolved: string[] } {
  const edges: ImportEdge[] = [];
  const unresolved: string[] = [];
  for (const path of houseFiles()) {
    const from = keyOf(path)!;
    for (const specifier of relativeSpecifiers(sourceText(path))) {
      const target = resolve(dirname(path), specifier);
      // A data file outside src/ and workers/ (luci-app's rules.json) is no part of the folder graph.
      if (keyOf(target) === null && keyOf(`${target}/`) === null) continue;
      const file = resolveFile(path, specifier);
      const to = file === null ? null : keyOf(file);
      if (to === null) unresolved.push(`${shown(from)} imports '${specifier}'`);
      else edges.push({ from, specifier, to });
    }
  }
  return { edges, unresolved };
}

test('the checker reports a folder cycle with one import per edge, and a deep import', () => {
  const edges: ImportEdge[] = [
    { from: 'a/x.ts', specifier: '../b/index.ts', to: 'b/index.ts' },
    { from: 'b/y.ts', specifier: '../c/index.ts', to: 'c/index.ts' },
    { from: 'c/z.ts', specifier: '../a/x.ts', to: 'a/x.ts' },
    { from: 'c/z.ts', specifier: '../a/index.ts', to: 'a/index.ts' },
    { from: 'd/w.ts', specifier: '../a/index.ts', to: 'a/index.ts' },
    { from: 'a/x.ts', specifier: '../errors.ts', to: 'errors.ts' },
    { from: 'daemon.ts', specifier: './d/w.ts', to: 'd/w.ts' },
    { from: 'a/x.ts', specifier: './sub/v.ts', to: 'a/sub/v.ts' },
  ];
  const report = checkImports(edges);
  assert.equal(
    report.cycles.map((c) => c.folders),
    [['a', 'b', 'c']],
  );
  assert.equal(report.cycles[0]!.edges.map((e) => `${e.from} ${e.specifier}`).sort(), [
    'a/x.ts ../b/index.ts',
    'b/y.ts ../c/index.ts',
    'c/z.ts ../a/x.ts',
  ]);
  assert.ok(describeCycle(report.cycles[0]!).includes("c -> a: src/c/z.ts imports '../a/x.ts'"));
  assert.equal(
    report.deep.map((e) => `${e.from} ${e.specifier}`),
    ['c/z.ts ../a/x.ts', 'daemon.ts ./d/w.ts'],
  );
});

test('the checker finds no cycle in a layered graph and resolves specifiers as Node would', () => {
  const report = checkImports([
    { from: 'a/x.ts', specifier: '../b/index.ts', to: 'b/index.ts' },
    { from: 'b/y.ts', specifier: '../c/index.ts', to: 'c/index.ts' },
  ]);
  assert.equal(report, { cycles: [], deep: [] });
  const files = new Set(['a/x.ts', 'b/index.ts', 'errors.ts']);
  const exists = (p: string): boolean => files.has(p);
  assert.is(resolveSpecifier('a/y.ts', '../b/index.ts', exists), 'b/index.ts');
  assert.is(resolveSpecifier('a/y.ts', '../b', exists), 'b/index.ts');
  assert.is(resolveSpecifier('a/y.ts', './x.js', exists), 'a/x.ts');
  assert.is(resolveSpecifier('a/y.ts', '../../outside.ts', exists), null);
  assert.equal(
    relativeSpecifiers(
      [
        "import { a } from './a.ts';",
        "export type { B } from '../b/index.ts';",
        "// import { c } from './c.ts';",
        "const d = await import('./d.ts');",
        "import { readFileSync } from 'node:fs';",
      ].join('\n'),
    ),
    ['./a.ts', '../b/index.ts', './d.ts'],
  );
});

test("src/ and workers/ have no folder cycle and no import past a folder's index.ts (beyond the allowlist)", () => {
  const { edges, unresolved } = srcEdges();
  assert.equal(unresolved, [], 'every relative import resolves to a file under src/ or workers/');
  const report = checkImports(edges);
  const problems: string[] = [];

  const allowedCycles = new Set(ALLOWED.cycles.map((c) => [...c.folders].sort().join(',')));
  const foundCycles = new Set(report.cycles.map((c) => c.folders.join(',')));
  for (const cycle of report.cycles) {
    if (!allowedCycles.has(cycle.folders.join(','))) problems.push(`folder cycle ${describeCycle(cycle)}`);
  }
  for (const key of allowedCycles)
    if (!foundCycles.has(key)) problems.push(`allowlisted cycle ${key} is gone: remove it from ALLOWED`);

  const key = (file: string, specifier: string): string => `${file} '${specifier}'`;
  const allowedDeep = new Set(ALLOWED.deep.map((d) => key(d.file, d.specifier)));
  const foundDeep = new Set(report.deep.map((e) => key(shown(e.from), e.specifier)));
  for (const e of report.deep) {
    const k = key(shown(e.from), e.specifier);
    if (!allowedDeep.has(k)) problems.push(`${k} skips ${e.to.split('/')[0]}/index.ts`);
  }
  for (const k of allowedDeep) if (!foundDeep.has(k)) problems.push(`allowlisted ${k} is gone: remove it from ALLOWED`);

  assert.ok(problems.length === 0, `\n${problems.join('\n')}\n`);
});

test('the checker finds each circle between files, the shortest through its first file', () => {
  const e = (from: string, to: string): ImportEdge => ({ from, specifier: `./${to}`, to });
  const circles = fileCycles([
    e('a/x.ts', 'a/y.ts'),
    e('a/y.ts', 'a/z.ts'),
    e('a/z.ts', 'a/x.ts'),
    e('a/y.ts', 'a/x.ts'),
    e('a/w.ts', 'a/x.ts'),
    e('b/p.ts', 'b/q.ts'),
  ]);
  assert.equal(circles.map(describeFileCycle), ["a/x.ts -> a/y.ts ('./a/y.ts') -> a/x.ts ('./a/x.ts')"]);
  assert.equal(fileCycles([e('a/x.ts', 'a/y.ts'), e('a/y.ts', 'a/z.ts')]), []);
});

test('no two files of src/ or workers/ import each other, through any chain of imports (types too)', () => {
  const circles = fileCycles(srcEdges().edges).map((c) =>
    c.map((e) => ({ ...e, from: shown(e.from), to: shown(e.to) })),
  );
  assert.ok(circles.length === 0, `\n${circles.map(describeFileCycle).join('\n')}\n`);
});

test(
  'the export checker reads what a module exports and ' + 'takes, as written (aliases, export *, dynamic imports)',
  () => {
    const star = (specifier: string): string[] | null => (specifier === './all.ts' ? ['p', 'q'] : null);
    assert.equal(
      [
        ...exportedNames(
          [
            "export { a, b as c } from './x.ts';",
            "export type { T } from './x.ts';",
            "export * from './all.ts';",
            'export const d = 1, e = 2;',
            'export function f(): void {}',
            'export interface I {}',
            'const hidden = 3;',
            'export { hidden as g };',
          ].join('\n'),
          star,
        ),
      ].sort(),
      ['I', 'T', 'c', 'd', 'e', 'f', 'g', 'p', 'q', 'a'].sort(),
    );
    const taken = importedNames(
      [
        "import { a, type B, c as d } from './x.ts';",
        "import e from './x.ts';",
        "export { f } from './y.ts';",
        "import * as z from './z.ts';",
        "const { g } = await import('./w.ts');",
        "const h = (await import('./v.ts')).h;",
        "const m = await import('./u.ts');",
        "type J = import('./t.ts').J;",
        "import { readFileSync } from 'node:fs';",
      ].join('\n'),
    );
    const seen = Object.fromEntries(taken.map((t) => [t.specifier, t.names === '*' ? '*' : [...t.names].sort()]));
    assert.equal(seen, {
      './x.ts': ['B', 'a', 'c', 'default'],
      './y.ts': ['f'],
      './z.ts': '*',
      './w.ts': ['g'],
      './v.ts': ['h'],
      './u.ts': '*',
      './t.ts': ['J'],
    });
  },
);

const exportsRead = new Map<string, Set<string>>();
function exportsOf(path: string): Set<string> {
  let names = exportsRead.get(path);
  if (names === undefined) {
    exportsRead.set(
      path,
      (names = exportedNames(sourceText(path), (specifier) => {
        const file = resolveFile(path, specifier);
        return file === null ? null : exportsOf(file);
      })),
    );
  }
  return names;
}

test(
  "every name a folder's index.ts exports is imported by src/ or workers/ from outside that folder (beyond the " +
    'list)',
  () => {
    const indexes = readdirSync(SRC)
      .map((name) => join(SRC, name, 'index.ts'))
      .filter((p) => existsSync(p));
    const used = new Map(indexes.map((p) => [p, new Set<string>()]));
    for (const path of houseFiles()) {
      for (const { specifier, names } of importedNames(sourceText(path))) {
        const target = resolveFile(path, specifier);
        const into = target === null ? undefined : used.get(target);
        if (into === undefined || path.startsWith(dirname(target!) + sep)) continue;
        for (const name of names === '*' ? exportsOf(target!) : names) into.add(name);
      }
    }
    const problems: string[] = [];
    const kept = new Map(KEPT_EXPORTS.map((k) => [k.index, new Set(k.names)]));
    for (const index of indexes) {
      const file = shown(keyOf(index)!);
      const exported = exportsOf(index);
      const keep = kept.get(file) ?? new Set<string>();
      const unused = [...exported].filter((name) => !used.get(index)!.has(name) && !keep.has(name));
      if (unused.length > 0) {
        problems.push(
          `${file} exports ${unused.length} name(s) nobody outside imports (drop them, or keep them in KEPT_EXPORTS ` +
            `with a reason): ${unused.join(', ')}`,
        );
      }
      for (const name of keep) {
        if (!exported.has(name)) problems.push(`${file} no longer exports ${name}: remove it from KEPT_EXPORTS`);
        else if (used.get(index)!.has(name))
          problems.push(`${file}'s ${name} is imported from outside now: remove it from KEPT_EXPORTS`);
      }
    }
    for (const file of kept.keys()) {
      if (!indexes.some((p) => shown(keyOf(p)!) === file))
        problems.push(`${file} is gone: remove it from KEPT_EXPORTS`);
    }
    assert.ok(problems.length === 0, `\n${problems.join('\n')}\n`);
  },
);

test('no file of src/ or workers/ is over 600 lines, and one of 400 to 600 lines has a reason', () => {
  const problems: string[] = [];
  const lines = new Map(houseFiles().map((path) => [shown(keyOf(path)!), sourceText(path).split('\n').length - 1]));
  for (const [file, n] of lines) {
    if (n > MAX_LINES && !(file in OVER_LIMIT)) problems.push(`${file} has ${n} lines (over ${MAX_LINES}): split it`);
    if (n >= REASON_LINES && n <= MAX_LINES && !(file in SIZE_REASONS)) {
      problems.push(`${file} has ${n} lines: split it, or say in SIZE_REASONS why it is one file`);
    }
  }
  for (const file of Object.keys(SIZE_REASONS)) {
    const n = lines.get(file);
    if (n === undefined || n < REASON_LINES || n > MAX_LINES)
      problems.push(`${file} (${n ?? 'gone'}) left the 400–600 band: move or remove its SIZE_REASONS entry`);
  }
  for (const file of Object.keys(OVER_LIMIT)) {
    const n = lines.get(file);
    if (n === undefined || n <= MAX_LINES)
      problems.push(`${file} (${n ?? 'gone'}) is no longer over ${MAX_LINES}: remove its OVER_LIMIT entry`);
  }
  assert.ok(problems.length === 0, `\n${problems.join('\n')}\n`);
});

/** Over this many lines (within 50 of MAX_LINES) a file is named in docs/architecture.md with why it is one idea. */
const NEAR_LINES = 550;
const NEAR_HEADING = '## Files near the limit';

/** docs/architecture.md's "Files near the limit": each file it names (a line `- \`src/…\`: reason`), and why. */
function nearLimitNamed(): Map<string, string> {
  const doc = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8').split('\n');
  const start = doc.indexOf(NEAR_HEADING);
  assert.ok(start >= 0, `docs/architecture.md has no "${NEAR_HEADING}" section`);
  const named = new Map<string, string>();
  for (const line of doc.slice(start + 1)) {
    if (line.startsWith('## ')) break;
    const entry = /^- `((?:src|workers)\/[^`]+\.ts)`: (.*)$/.exec(line);
    if (entry) named.set(entry[1]!, entry[2]!.trim());
  }
  return named;
}

test(`a file over ${NEAR_LINES} lines is named in docs/architecture.md with why it is one idea`, () => {
  const named = nearLimitNamed();
  const problems: string[] = [];
  const lines = new Map(houseFiles().map((path) => [shown(keyOf(path)!), sourceText(path).split('\n').length - 1]));
  for (const [file, n] of lines) {
    if (n > NEAR_LINES && !named.has(file))
      problems.push(
        `${file} has ${n} lines (over ${NEAR_LINES}): split it by responsibility, or say in one line of ` +
          `docs/architecture.md "${NEAR_HEADING.slice(3)}" why it is one idea`,
      );
  }
  for (const [file, reason] of named) {
    const n = lines.get(file);
    if (n === undefined || n <= NEAR_LINES)
      problems.push(`${file} (${n ?? 'gone'}) is not over ${NEAR_LINES}: remove its line from docs/architecture.md`);
    else if (reason.split(/\s+/).length < 6) problems.push(`${file}: its line in docs/architecture.md gives no reason`);
  }
  assert.ok(problems.length === 0, `\n${problems.join('\n')}\n`);
});

/** DESIGN's composition root stays small: it keeps the build, start and stop order; a job of its own is apart. */
const ROOT_LINES = 300;

test(`the composition root, src/daemon.ts, is at most ${ROOT_LINES} lines`, () => {
  const n = readFileSync(join(SRC, 'daemon.ts'), 'utf8').split('\n').length - 1;
  assert.ok(n <= ROOT_LINES, `src/daemon.ts has ${n} lines: move a job of its own into src/composition/`);
});

/** The composition root, daemon.ts and composition/ together: the budget it is built to, and holds. */
const ROOT_BUDGET = 350;

function rootFiles(): string[] {
  return [join(SRC, 'daemon.ts'), ...sourceFiles(join(SRC, 'composition'))];
}

test(`the composition root (daemon.ts and composition/) keeps to ${ROOT_BUDGET} lines`, () => {
  const n = rootFiles().reduce((sum, f) => sum + sourceText(f).split('\n').length - 1, 0);
  assert.ok(n <= ROOT_BUDGET, `the root has ${n} lines (budget ${ROOT_BUDGET}): move a job to the part it belongs to`);
});

/**
 * Names of a payment method the root may still say, each with its reason; one no longer said fails the test, so the
 * list only shrinks.
 */
const ROOT_NAMES_LEFT: Record<string, string> = {};

/** The words of a file's code (comments dropped), each lower-cased with `-` and `_` removed (batchSettlement). */
function codeWords(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
  return (code.match(/[A-Za-z0-9_-]+/g) ?? []).map((w) => w.toLowerCase().replace(/[-_]/g, ''));
}

test("the composition root names no payment method: the core does not know its extensions' names", () => {
  const key = (w: string): string => w.toLowerCase().replace(/[-_]/g, '');
  const names = new Set(
    REGISTERED.flatMap(({ plugin: p, schemes, stats, lanUse, payForm }) => [
      ...[p.name, p.switch, stats?.key, lanUse?.name, payForm?.key],
      ...schemes.map((s) => s.scheme),
    ])
      .filter((n): n is string => n !== undefined)
      .map(key),
  );
  for (const left of Object.keys(ROOT_NAMES_LEFT)) names.add(key(left));
  const problems: string[] = [];
  const said = new Set<string>();
  for (const file of rootFiles()) {
    const words = codeWords(sourceText(file));
    for (const name of names) {
      if (!words.some((w) => w.includes(name))) continue;
      said.add(name);
      if (!(name in ROOT_NAMES_LEFT)) problems.push(`${shown(keyOf(file)!)} names ${name}: let its plugin bring it`);
    }
  }
  for (const left of Object.keys(ROOT_NAMES_LEFT))
    if (!said.has(key(left))) problems.push(`the root no longer names ${left}: remove it from ROOT_NAMES_LEFT`);
  assert.ok(problems.length === 0, `\n${problems.join('\n')}\n`);
});

test.run();
