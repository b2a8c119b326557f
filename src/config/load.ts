/**
 * UCI package → typed, validated Config. Every option has a default (docs/configuration.md). Every problem is named
 * `section.option: reason, got "text"`, so one attempt shows the admin everything to fix. A router must not lose its
 * service over one bad value, so the daemon runs on the valid part (`configFromUciPartial`): a bad `main`/`limits`
 * option falls back to its default, a bad plan is left out, a bad enabled upstream section is disabled, a section
 * type sluice does not support yet is ignored, and each problem says which of those happened. `configFromUci` is the
 * strict form (any problem → ConfigError). Pure (the hostname comes in as an argument; load-file.ts reads the files).
 */
import { SluiceError } from '../errors.ts';
import type { Config, LimitsConfig, MainConfig, MqttConfig, PricingPlan, RadiusConfig } from './types.ts';
import { readMqttSection } from './mqtt.ts';
import { readHookSection } from './hook.ts';
import { formatProblem, SectionReader, type ConfigProblem, type ProblemEffect } from './reader.ts';
import { crossRuleViolations } from './rules.ts';
import { parseRate } from '../portal/index.ts';
import { RADIUS_DEFAULTS, readRadiusSection } from './radius.ts';
import { readX402Section } from './x402.ts';
import { readEscrowSection } from './escrow.ts';
import { readBatchSettlementSection } from './batch-settlement.ts';
import { readUptoSection } from './upto.ts';
import { readTollgateSection } from './tollgate.ts';
import { readWalledGarden } from './walled-garden.ts';
import { OWN_GATE_LISTEN, readHttpSection } from './http.ts';
import { sectionsOfType, type UciPackage, type UciSection } from './uci.ts';
import {
  isAbsolutePath,
  isEvmAddress,
  parseBool,
  parseDeviceNames,
  parseInteger,
  parseQuantity,
  parseSecondsToMs,
  parseUnsignedBigInt,
  splitCommand,
  UINT128_MAX,
} from './values.ts';

/** A plan's `devices` at most (sessions' MAX_DEVICES, which config cannot import: config sits below sessions). */
export const MAX_PLAN_DEVICES = 16;
/**
 * Trials of one plan per `trial_every` on one router unless `trial_limit` says otherwise: what bounds a device that
 * changes its MAC *and* clears its browser for each trial (payments/trial/trial.ts). Far above a busy café's daily
 * guests.
 */
export const DEFAULT_TRIAL_LIMIT = 500;
/** The trial ledger keeps MAX_TRIAL_KEYS keys, two per trial at most: a cap above this could not be counted. */
const MAX_TRIAL_LIMIT = 10_000;

export class ConfigError extends SluiceError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[], file?: string) {
    const head = file === undefined ? '' : `${file}: `;
    super('ERR_CONFIG_INVALID', `${head}${problems.map(formatProblem).join('; ')}`, {
      details: { problems, ...(file === undefined ? {} : { file }) },
    });
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** A data plan's `time_limit` cap: ten years, like the largest grant (ms deadlines stay far inside 2^53). */
const MAX_TIME_LIMIT = 3653n * 86_400n;

/** Defaults in UCI units (seconds, text), as documented; the loader converts them. */
export const DEFAULTS = {
  main: {
    enabled: true,
    state_dir: '/etc/sluice',
    ndsctl: '/usr/bin/ndsctl',
    ndsctl_socket: 'auto',
    portal: 'auto',
    poll_interval: 2,
    checkpoint_interval: 300,
    ndsctl_timeout: 5,
    workers: 1,
    ubus_socket: '/var/run/ubus/ubus.sock',
    log_level: 'info',
    leave_foreign_clients: false,
    portal_output_max: '32MiB',
    min_read_interval: 0.02,
    kernel_quota: false,
    nft: 'nft',
    shape_device: '',
    tc: 'tc',
  },
  pricing: {
    metric: 'seconds',
    step_size: { seconds: 60n, bytes: 1n << 20n },
    currency: 'USDC',
    asset: '',
    decimals: 6,
    min_steps: 1n,
    max_steps: 100n,
  },
  radius: RADIUS_DEFAULTS,
  mqtt: { topic_prefix: 'sluice', qos: 1 },
  limits: { max_devices_per_user: 0, max_sessions: 0 },
} as const;

/** Allotments stay exact as JS numbers (the meter and timers work in numbers). */
const MAX_ALLOTMENT = BigInt(Number.MAX_SAFE_INTEGER);

const bool = parseBool;
const int = (min: number, max: number) => (v: string) => parseInteger(v, min, max);
const seconds = (min: number, max: number) => (v: string) => parseSecondsToMs(v, min, max);
const check =
  (test: (v: string) => boolean, reason: string) =>
  (v: string): string | undefined =>
    test(v) ? undefined : reason;

/** The section of a singleton type: the one with the canonical name, else the first of its type. */
function singleton(pkg: UciPackage, type: string, name: string): UciSection | undefined {
  return pkg.sections.find((s) => s.name === name && s.type === type) ?? sectionsOfType(pkg, type)[0];
}

/** A command option: `list <name>` is argv as is (empty items dropped), `option <name>` is split like a shell line. */
function readCommand(r: SectionReader, name: string, fallback: string): string[] {
  const raw = r.raw(name);
  if (Array.isArray(raw)) {
    const argv = raw.filter((a) => a !== '');
    return argv.length > 0 ? argv : [fallback];
  }
  return raw === undefined ? [fallback] : r.parsed(name, [fallback], splitCommand);
}

/**
 * sluice's own gate (`portal 'sluice'`) has no counters but the kernel's, and its IPv6 is the IPv6 gate's: the kernel
 * quota's parts are on with it, whatever `kernel_quota` says (a `kernel_quota 0` beside it is reported).
 */
function ownGateCounts(r: SectionReader, kernelQuota: boolean): boolean {
  if (r.raw('portal') !== 'sluice') return kernelQuota;
  if (!kernelQuota && r.raw('kernel_quota') !== undefined)
    r.report('kernel_quota', "portal 'sluice' meters with the kernel's counters: kernel_quota is on");
  return true;
}

function readMain(r: SectionReader, hostname: string): MainConfig {
  const d = DEFAULTS.main;
  const fallbackId = /^[A-Za-z0-9._-]{1,64}$/.test(hostname) ? hostname : 'sluice';
  const ndsctl = readCommand(r, 'ndsctl', d.ndsctl);
  const nft = readCommand(r, 'nft', d.nft);
  const tc = readCommand(r, 'tc', d.tc);
  return {
    enabled: r.parsed('enabled', d.enabled, bool),
    stateDir: r.string('state_dir', d.state_dir, check(isAbsolutePath, 'must be an absolute path')),
    ndsctl,
    ndsctlSocket: r.string(
      'ndsctl_socket',
      d.ndsctl_socket,
      check((v) => v === 'auto' || v === 'off' || isAbsolutePath(v), "must be 'auto', 'off' or an absolute path"),
    ),
    portal: r.oneOf('portal', ['auto', 'opennds', 'nodogsplash', 'sluice'] as const, d.portal),
    pollIntervalMs: r.parsed('poll_interval', d.poll_interval * 1000, seconds(0.2, 3600)),
    minReadIntervalMs: r.parsed('min_read_interval', d.min_read_interval * 1000, seconds(0.02, 3600)),
    checkpointIntervalMs: r.parsed('checkpoint_interval', d.checkpoint_interval * 1000, seconds(5, 86400)),
    ndsctlTimeoutMs: r.parsed('ndsctl_timeout', d.ndsctl_timeout * 1000, seconds(0.5, 300)),
    workers: r.parsed('workers', d.workers, int(1, 16)),
    routerId: r.string(
      'router_id',
      fallbackId,
      check((v) => /^[A-Za-z0-9._-]{1,64}$/.test(v), 'must be 1 to 64 characters from A-Z a-z 0-9 . _ -'),
    ),
    ubusSocket: r.string('ubus_socket', d.ubus_socket, check(isAbsolutePath, 'must be an absolute path')),
    logLevel: r.oneOf('log_level', ['debug', 'info', 'warn', 'error'] as const, d.log_level),
    leaveForeignClients: r.parsed('leave_foreign_clients', d.leave_foreign_clients, bool),
    venue: r.string(
      'venue',
      '',
      check((v) => /^[A-Za-z0-9._-]{0,64}$/.test(v), 'must be 0 to 64 characters from A-Z a-z 0-9 . _ -'),
    ),
    venuePresentWindowMs: r.parsed('venue_present_window', 1000, seconds(1, 3600)),
    venueLeaseTtlMs: r.parsed('venue_lease_ttl', 90_000, seconds(5, 86400)),
    portalOutputMax: r.parsed('portal_output_max', 32 * 1024 * 1024, (v) => {
      const q = parseQuantity(v, 'bytes');
      const reason = 'must be a size from 1MiB to 1GiB (a number of bytes, optionally with a unit: 64MiB)';
      return q.ok && q.value >= 1n << 20n && q.value <= 1n << 30n
        ? { ok: true, value: Number(q.value) }
        : { ok: false, reason };
    }),
    kernelQuota: ownGateCounts(r, r.parsed('kernel_quota', d.kernel_quota, bool)),
    nft,
    shapeDevices: r.parsed('shape_device', [], parseDeviceNames),
    tc,
    walledGarden: readWalledGarden(r),
  };
}

function readPlan(
  section: UciSection,
  problems: ConfigProblem[],
  context: Readonly<Record<string, boolean>>,
): PricingPlan {
  const r = new SectionReader(
    section,
    `pricing[${section.anonymous ? `@pricing[${section.index}]` : section.name}]`,
    problems,
  );
  const d = DEFAULTS.pricing;
  if (section.anonymous) r.report('name', "a plan needs a name, its id: config pricing '<id>'");
  const metric = r.oneOf('metric', ['seconds', 'bytes'] as const, d.metric);
  const stepSize = r.parsed('step_size', d.step_size[metric], (v) => parseQuantity(v, metric));
  const pricePerStep = r.required(
    'price_per_step',
    0n,
    (v) => parseUnsignedBigInt(v, UINT128_MAX, 'must be a non-negative integer (smallest unit of the asset)'),
    'is required: a non-negative integer (smallest unit of the asset)',
  );
  const stepsReason = 'must be a whole number of steps, at least 1';
  const minSteps = r.parsed('min_steps', d.min_steps, (v) => {
    const p = parseUnsignedBigInt(v, MAX_ALLOTMENT, stepsReason);
    return p.ok && p.value < 1n ? { ok: false, reason: stepsReason } : p;
  });
  const maxSteps = r.parsed('max_steps', minSteps > d.max_steps ? minSteps : d.max_steps, (v) =>
    parseUnsignedBigInt(v, MAX_ALLOTMENT, stepsReason),
  );
  const plan: PricingPlan = {
    id: section.name,
    metric,
    stepSize,
    pricePerStep,
    asset: r.string(
      'asset',
      d.asset,
      check((v) => isEvmAddress(v), 'must be a token contract address (0x and 40 hex digits)'),
    ),
    currency: r.string(
      'currency',
      d.currency,
      check((v) => /^[A-Za-z0-9._-]{1,16}$/.test(v), 'must be 1 to 16 characters from A-Z a-z 0-9 . _ -'),
    ),
    decimals: r.parsed('decimals', d.decimals, int(0, 36)),
    minSteps,
    maxSteps,
  };
  const timeLimit = r.parsed<bigint | null>('time_limit', null, (v) => {
    if (metric !== 'bytes')
      return { ok: false, reason: 'is for data plans (a time plan ends by its time): remove it, or sell data' };
    const p = parseQuantity(v, 'seconds');
    return p.ok && p.value > MAX_TIME_LIMIT
      ? { ok: false, reason: `must be at most ${MAX_TIME_LIMIT} seconds (10 years)` }
      : p;
  });
  if (timeLimit !== null) plan.timeLimit = timeLimit;
  const trialEvery = r.parsed<bigint | null>('trial_every', null, (v) => {
    if (pricePerStep !== 0n) return { ok: false, reason: 'is for free plans: a trial plan has price_per_step 0' };
    const p = parseQuantity(v, 'seconds');
    return p.ok && p.value > MAX_TIME_LIMIT
      ? { ok: false, reason: `must be at most ${MAX_TIME_LIMIT} seconds (10 years)` }
      : p;
  });
  if (trialEvery !== null) plan.trialEvery = trialEvery;
  const trialLimit = r.parsed<number | null>('trial_limit', null, (v) => {
    if (trialEvery === null)
      return { ok: false, reason: 'is for free-trial plans (trial_every): remove it, or set trial_every' };
    return parseInteger(v, 0, MAX_TRIAL_LIMIT);
  });
  if (trialEvery !== null) plan.trialLimit = trialLimit ?? DEFAULT_TRIAL_LIMIT;
  const devices = r.parsed('devices', 1, int(1, MAX_PLAN_DEVICES));
  if (devices > 1) plan.devices = devices;
  // Shown on a phone and sent in JSON: printable text only (no control characters), short enough for one line.
  const displayName = r.string(
    'display_name',
    '',
    check(
      (v) => v.trim() !== '' && [...v].length <= 64 && !/[\u0000-\u001f\u007f-\u009f]/.test(v),
      'must be 1 to 64 characters of text, without control characters',
    ),
  );
  if (displayName !== '') plan.displayName = displayName.trim();
  for (const [option, key] of [
    ['rate_down', 'rateDownBps'],
    ['rate_up', 'rateUpBps'],
  ] as const) {
    const bps = r.parsed<number | null>(option, null, (v) => {
      const p = parseRate(v);
      return p.ok ? { ok: true, value: p.bps } : p;
    });
    if (bps !== null) plan[key] = bps;
  }
  const invalid = new Set(problems.map((p) => p.option));
  const values = { metric, step_size: stepSize, min_steps: minSteps, max_steps: maxSteps, asset: plan.asset };
  for (const v of crossRuleViolations('pricing', { values, context, invalid })) {
    const text = r.raw(v.option);
    r.report(v.option, v.reason, typeof text === 'string' ? text : undefined);
  }
  return plan;
}

/** Upstream sections are validated only when enabled; a disabled one keeps whatever parses and defaults the rest. */
function upstreamReader(
  pkg: UciPackage,
  type: string,
  problems: ConfigProblem[],
  secrets: string[],
): { r: SectionReader; enabled: boolean } {
  const section = singleton(pkg, type, type);
  const probe = new SectionReader(section, type, problems);
  const enabled = probe.parsed('enabled', false, bool);
  return { r: new SectionReader(section, type, enabled ? problems : [], new Set(secrets)), enabled };
}

function readRadius(pkg: UciPackage, problems: ConfigProblem[], routerId: string): RadiusConfig {
  const { r, enabled } = upstreamReader(pkg, 'radius', problems, ['secret', 'das_secret']);
  return readRadiusSection(r, enabled, routerId);
}

function readMqtt(pkg: UciPackage, problems: ConfigProblem[], routerId: string): MqttConfig {
  const { r, enabled } = upstreamReader(pkg, 'mqtt', problems, ['password', 'command_secret']);
  return readMqttSection(r, enabled, routerId);
}

function readLimits(pkg: UciPackage, problems: ConfigProblem[]): LimitsConfig {
  const r = new SectionReader(singleton(pkg, 'limits', 'limits'), 'limits', problems);
  const d = DEFAULTS.limits;
  return {
    maxDevicesPerUser: r.parsed('max_devices_per_user', d.max_devices_per_user, int(0, 1_000_000)),
    maxSessions: r.parsed('max_sessions', d.max_sessions, int(0, 100_000_000)),
  };
}

/**
 * A section a payment plugin brings (PaymentPlugin.section), read beside the built-in ones into Config.sections: the
 * loader names none, and a bad value is reported and its default used, as `main`'s are.
 */
export interface OwnSection {
  /** Its UCI type and name: `config <type> '<type>'`. */
  readonly type: string;
  /** Its settings from the section (absent: every default). */
  read(r: SectionReader): unknown;
}

export interface ConfigFromUciOptions {
  /** Default for main.router_id (loadConfig passes os.hostname()). */
  hostname?: string;
  /** The sections the payment plugins bring (PaymentPlugins.sectionsOf). */
  sections?: readonly OwnSection[];
  /**
   * The per-network default of x402.rpc_url (x402/networks.ts DEFAULT_RPC_URLS; tests point a network at their chain).
   */
  rpcDefaults?: Readonly<Record<string, string>>;
}

export interface PartialConfig {
  /** What the daemon runs on: every valid part, defaults where a value was bad. */
  config: Config;
  /** Every problem, each with what was done about it (`effect`); empty for a clean file. */
  problems: ConfigProblem[];
  /**
   * Read from files: secrets (`section.option`) found in the main file, not in its `_secrets` file, where any user who
   * may read the settings can read them too. Used all the same; the daemon logs a warning for each.
   */
  exposedSecrets?: string[];
}

const withEffect = (list: ConfigProblem[], effect: ProblemEffect): ConfigProblem[] =>
  list.map((p) => ({ ...p, effect }));

/** The plugins' own sections as their readers read them (none brings one: no `sections` at all). */
function ownSections(
  pkg: UciPackage,
  sections: readonly OwnSection[],
  problems: ConfigProblem[],
): Pick<Config, 'sections'> {
  if (sections.length === 0) return {};
  const read = (own: OwnSection) => own.read(new SectionReader(singleton(pkg, own.type, own.type), own.type, problems));
  return { sections: Object.fromEntries(sections.map((own) => [own.type, read(own)])) };
}

/**
 * Pure: a parsed UCI package → the config to run on and every problem. A bad `main` or `limits` option falls back to
 * its default; a plan with any problem is left out; an enabled upstream section with any problem is disabled.
 */
export function configFromUciPartial(pkg: UciPackage, options: ConfigFromUciOptions = {}): PartialConfig {
  return readAll(pkg, options, 'effective');
}

/**
 * `rulesSee`: whether cross-field rules see an upstream as configured (strict: report everything the file says, as
 * LuCI's form does) or as it will run (partial: a plan is not left out for a section that was disabled anyway).
 */
function readAll(pkg: UciPackage, options: ConfigFromUciOptions, rulesSee: 'configured' | 'effective'): PartialConfig {
  const mainProblems: ConfigProblem[] = [];
  const main = readMain(
    new SectionReader(singleton(pkg, 'sluice', 'main'), 'main', mainProblems),
    options.hostname ?? 'sluice',
  );

  /** An upstream section with a problem is switched off rather than run half-configured. */
  const upstreamProblems: ConfigProblem[] = [];
  const upstream = <T extends { enabled: boolean }>(read: (sink: ConfigProblem[]) => T): T => {
    const sink: ConfigProblem[] = [];
    const section = read(sink);
    if (sink.length === 0) return section;
    upstreamProblems.push(...withEffect(sink, 'section-disabled'));
    return { ...section, enabled: false };
  };
  const radius = upstream((sink) => readRadius(pkg, sink, main.routerId));
  const mqtt = upstream((sink) => readMqtt(pkg, sink, main.routerId));
  const escrow = upstream((sink) => {
    const { r, enabled } = upstreamReader(pkg, 'escrow', sink, []);
    return readEscrowSection(r, enabled);
  });
  const x402 = upstream((sink) => {
    const { r, enabled } = upstreamReader(pkg, 'x402', sink, []);
    return readX402Section(r, enabled, options.rpcDefaults);
  });
  const hook = upstream((sink) => {
    const { r, enabled } = upstreamReader(pkg, 'hook', sink, ['secret']);
    return readHookSection(r, enabled);
  });
  const batchSettlement = upstream((sink) => {
    const { r, enabled } = upstreamReader(pkg, 'batch_settlement', sink, []);
    return readBatchSettlementSection(r, enabled);
  });
  const upto = upstream((sink) => {
    const { r, enabled } = upstreamReader(pkg, 'upto', sink, []);
    return readUptoSection(r, enabled);
  });

  const planProblems: ConfigProblem[] = [];
  const planSections = sectionsOfType(pkg, 'pricing');
  if (planSections.length === 0) {
    planProblems.push({
      path: 'pricing',
      section: 'pricing',
      option: '',
      reason: "no plan: add at least one config pricing '<id>' section",
      effect: 'no-plan',
    });
  }
  const escrowConfigured = upstreamReader(pkg, 'escrow', [], []).enabled;
  const context = { 'escrow.enabled': rulesSee === 'configured' ? escrowConfigured : escrow.enabled };
  const pricing: PricingPlan[] = [];
  for (const s of planSections) {
    const sink: ConfigProblem[] = [];
    const plan = readPlan(s, sink, context);
    if (sink.length === 0) pricing.push(plan);
    else planProblems.push(...withEffect(sink, 'plan-left-out'));
  }
  if (rulesSee === 'effective' && planSections.length > 0 && pricing.length === 0) {
    planProblems.push({
      path: 'pricing',
      section: 'pricing',
      option: '',
      reason: 'no valid plan: every plan was left out',
      effect: 'no-plan',
    });
  }
  // After the plans: `tollgate.plan` must name one the daemon runs (strict: one the file defines).
  const planIds = new Map(
    (rulesSee === 'configured'
      ? planSections.map((s) => ({ id: s.name, trial: s.options.has('trial_every') }))
      : pricing.map((p) => ({ id: p.id, trial: p.trialEvery !== undefined }))
    ).map((p) => [p.id, { trial: p.trial }] as const),
  );
  const tollgateRead = upstream((sink) => {
    const { r, enabled } = upstreamReader(pkg, 'tollgate', sink, []);
    return { enabled, section: enabled ? readTollgateSection(r, planIds) : null };
  });
  const tollgate = tollgateRead.enabled ? tollgateRead.section : null;
  const limitsProblems: ConfigProblem[] = [];
  const limits = readLimits(pkg, limitsProblems);
  const http = readHttpSection(
    new SectionReader(singleton(pkg, 'http', 'http'), 'http', limitsProblems, new Set(['pcsync_secret'])),
    main.portal === 'sluice' ? OWN_GATE_LISTEN : undefined,
  );
  const own = ownSections(pkg, options.sections ?? [], limitsProblems);
  const problems = [
    ...withEffect(mainProblems, 'default-used'),
    ...planProblems,
    ...upstreamProblems,
    ...withEffect(limitsProblems, 'default-used'),
  ];
  return {
    config: { main, pricing, radius, mqtt, escrow, x402, batchSettlement, upto, tollgate, http, hook, limits, ...own },
    problems,
  };
}

/** Pure and strict: a parsed UCI package → Config, or ConfigError with every problem. */
export function configFromUci(pkg: UciPackage, options: ConfigFromUciOptions = {}): Config {
  const { config, problems } = readAll(pkg, options, 'configured');
  if (problems.length > 0) throw new ConfigError(problems.map(({ effect: _effect, ...p }) => p));
  return config;
}
