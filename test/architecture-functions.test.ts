// tier: fast
/**
 * The function budget beside the file budget (test/architecture.test.ts): a function of src/ or workers/ is at most
 * MAX_FUNCTION_LINES lines and takes at most MAX_POSITIONAL positional parameters (more travel in an options object,
 * whose fields are named at the call). Each function past a bound has its reason in LENGTH_REASONS or
 * PARAMETER_REASONS; an entry that no longer applies (the function split, converted, renamed or moved) fails the test,
 * so the lists only shrink. Splits follow responsibilities, not line counts. The measure is
 * test/helpers/syntax-facts.ts (TypeScript's own parser), tried first on a synthetic file so that this test can
 * fail.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { functionsOf } from './helpers/syntax-facts.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const MAX_FUNCTION_LINES = 100;
const MAX_POSITIONAL = 4;

const SCRIPT =
  'a command run from start to end (the demo, the fleet server and its demo): its steps read in order; split into ' +
  'the parts it wires as they grow, not by lines';
const SCANNER =
  "a step of the usage scanners' inner loop (ndsctl json, nft's counter dump, the accountant they feed), run per " +
  'client per tick over up to 10k clients: the cursor and the slot travel as arguments so that no object is made ' +
  'per client; an options object here is a cost to measure first (npm run bench), not a mechanical change';
const TO_SPLIT =
  "one job whose steps share state (the tick, the journal's start): to split by responsibility with its tests, by " +
  "its folder's owner";
const TO_CONVERT =
  'a positional list not yet made an options object: a mechanical change, to make with its tests when its folder ' +
  'is next worked on';
const WIRE =
  "the ubus wire call's own fields (object, method, data, timeout, the reply's route) in the order libubus's " +
  'ubus_invoke takes them; the library mirrors the C API (docs/ubus-library.md)';
const TOOL =
  "outside the daemon (the simulator, the demo, the pay page's browser signer): the same debt as TO_CONVERT, " +
  'converted when next touched';

/** Functions over MAX_FUNCTION_LINES (`file name`), each with its reason. */
const LENGTH_REASONS: Record<string, string> = {
  'src/demo/index.ts runDemo': SCRIPT,
  'src/fleet/cli.ts runFleet': SCRIPT,
  'src/fleet/collector/collector.ts startCollector': SCRIPT,
  'src/fleet/demo/index.ts runFleetDemo': SCRIPT,
  'src/fleet/venue/service.ts startVenueService': TO_SPLIT,
  'src/meter/kernel-task.ts runKernelTask': TO_SPLIT,
  'src/meter/tick-loop.ts TickLoop.runTick': TO_SPLIT,
  'src/meter/tick-loop.ts TickLoop.apply': TO_SPLIT,
  'src/portal/scan.ts clientEntries': SCANNER,
  'src/sessions/journal-start.ts readStart': TO_SPLIT,
};

/** Functions with more than MAX_POSITIONAL positional parameters (`file name`), each with its reason. */
const PARAMETER_REASONS: Record<string, string> = {
  'src/browser/batch.ts depositPayment': TOOL,
  'src/browser/batch.ts voucherPayment': TOOL,
  'src/browser/batch.ts refundPayment': TOOL,
  'src/cashu/mint-client.ts MintClient.exchange': TO_CONVERT,
  'src/demo/summary.ts summary': TOOL,
  'src/fleet/collector/store.ts upsertSession': TO_CONVERT,
  'src/fleet/collector/store.ts insertPayment': TO_CONVERT,
  'src/fleet/collector/store.ts storeReject': TO_CONVERT,
  'src/fleet/dashboard/server.ts DashboardServer.send': TO_CONVERT,
  'src/fleet/venue/holder-reports.ts registerSale': TO_CONVERT,
  'src/fleet/venue/holder-reports.ts report': TO_CONVERT,
  'src/fleet/venue/leases.ts claim': TO_CONVERT,
  'src/fleet/venue/leases.ts move': TO_CONVERT,
  'src/fleet/venue/leases.ts released': TO_CONVERT,
  'src/fleet/venue/leases.ts notReleased': TO_CONVERT,
  'src/fleet/venue/leases.ts opened': TO_CONVERT,
  'src/fleet/venue/service.ts answer': TO_CONVERT,
  'src/gate/startup.ts quotaFoundOpen': TO_CONVERT,
  'src/meter/context.ts billUsage': TO_CONVERT,
  'src/meter/cut-planner.ts CutPlanner.onReading': TO_CONVERT,
  'src/meter/cut-planner.ts CutPlanner.farFromEnd': TO_CONVERT,
  'src/meter/cut-planner.ts CutPlanner.endAhead': TO_CONVERT,
  'src/meter/epochs.ts EpochAccountant.observe': SCANNER,
  'src/meter/epochs.ts EpochAccountant.writePending': SCANNER,
  'src/meter/gate-checks.ts GateChecks.paying': TO_CONVERT,
  'src/meter/kernel-mode.ts KernelMode.task': TO_CONVERT,
  'src/meter/kernel-mode.ts KernelMode.settle': TO_CONVERT,
  'src/meter/purchase-bases.ts PurchaseBases.noteFailedTick': TO_CONVERT,
  'src/meter/sessions-port.ts applyUsage': TO_CONVERT,
  'src/meter/task.ts usageSink/(arrow)': SCANNER,
  'src/meter/tick-loop.ts TickLoop.apply': TO_CONVERT,
  'src/payments/cashu/invoice-slots.ts InvoiceSlots.reserve': TO_CONVERT,
  'src/payments/cashu/payout.ts giveBack': TO_CONVERT,
  'src/payments/cashu/tollgate/events.ts noticeEvent': TO_CONVERT,
  'src/portal/nft-scan.ts Scan.record': SCANNER,
  'src/portal/scan-fallback.ts parseSnapshotFallback': TO_CONVERT,
  'src/portal/scan.ts rawAddressSink/(arrow)': SCANNER,
  'src/portal/scan.ts scanSnapshot': SCANNER,
  'src/portal/scan.ts advance': SCANNER,
  'src/portal/scan.ts envelope': SCANNER,
  'src/portal/scan.ts clientEntries': SCANNER,
  'src/sessions/billing.ts UsageBilling.apply': TO_CONVERT,
  'src/sessions/manager.ts SessionManager.applyUsage': TO_CONVERT,
  'src/sim/portal-render.ts renderOpenNdsAll': TOOL,
  'src/sim/portal-render.ts renderJsonFor': TOOL,
  'src/storage/damage.ts fileDamage': TO_CONVERT,
  'src/ubus/broker/core.ts BrokerCore.forwardInvoke': WIRE,
  'src/ubus/client.ts UbusClient.invokeMessages': WIRE,
  'src/ubus/client.ts UbusClient.request': WIRE,
  'src/ubus/connection.ts UbusConnection.request': WIRE,
  'src/ubus/server.ts ObjectDispatcher.reply': WIRE,
  'src/upstream/mqtt/writer.ts writeUsageRow': TO_CONVERT,
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return sourceFiles(path);
      return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
    });
}

test('the measure reads length and positional parameters as written (options objects, this, arrows)', () => {
  const source = [
    'export function five(a: number, b: number, c: number, d: number, e: number): void {}',
    'export function options({ a, b, c, d, e }: { a: 1; b: 2; c: 3; d: 4; e: 5 }, f: number): void {}',
    'function withThis(this: unknown, a: number): void {}',
    'class K {',
    '  constructor(private readonly a: number, b: number) {}',
    '  method(a: number, b: number, c: number, d: number, e: number): void {',
    '    const inner = (x: number, y: number, z: number, u: number, v: number, w: number): number => x;',
    '    void ((a: number, b: number) => a);',
    '  }',
    '}',
    'const named = (a: number): number => a;',
  ].join('\n');
  const seen = functionsOf(source).map((f) => `${f.name} ${f.positional} ${f.lines}`);
  assert.equal(seen, [
    'five 5 1',
    'options 1 1',
    'withThis 1 1',
    'K.constructor 2 1',
    'K.method 5 4',
    'inner 6 1',
    'K.method/(arrow) 2 1',
    'named 1 1',
  ]);
});

test(`functions within ${MAX_FUNCTION_LINES} lines, ${MAX_POSITIONAL} positional parameters, or a reason`, () => {
  const problems: string[] = [];
  const long = new Set<string>();
  const many = new Set<string>();
  for (const path of [...sourceFiles(join(ROOT, 'src')), ...sourceFiles(join(ROOT, 'workers'))]) {
    const file = relative(ROOT, path);
    for (const f of functionsOf(readFileSync(path, 'utf8'))) {
      const key = `${file} ${f.name}`;
      if (f.lines > MAX_FUNCTION_LINES) {
        long.add(key);
        if (!(key in LENGTH_REASONS))
          problems.push(`${key} (line ${f.line}) has ${f.lines} lines: split it by what it does, or give a reason`);
      }
      if (f.positional > MAX_POSITIONAL) {
        many.add(key);
        if (!(key in PARAMETER_REASONS))
          problems.push(`${key} (line ${f.line}) takes ${f.positional} positional parameters: pass an options object`);
      }
    }
  }
  for (const key of Object.keys(LENGTH_REASONS))
    if (!long.has(key)) problems.push(`${key} is within ${MAX_FUNCTION_LINES} lines (or gone): remove its entry`);
  for (const key of Object.keys(PARAMETER_REASONS))
    if (!many.has(key))
      problems.push(`${key} takes at most ${MAX_POSITIONAL} positional (or is gone): remove its entry`);
  assert.ok(problems.length === 0, `\n${problems.join('\n')}\n`);
});

test.run();
