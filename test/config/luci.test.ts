// tier: daemon
// luci-app-sluice: the JSON files parse, every ubus method a view declares is granted by the ACL, the views
// pass `node --check` (wrapped the way LuCI's loader wraps them: a function body), and the settings view's
// validators accept exactly what the daemon's loader accepts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import vm from 'node:vm';
import { ConfigError, configFromUci, configFromUciPartial } from '../../src/config/load.ts';
import { CROSS_RULES } from '../../src/config/rules.ts';
import { parseUci } from '../../src/config/uci.ts';
import { SECRET_OPTIONS } from '../../src/config/secrets.ts';
import { METHODS } from '../../src/api/methods.ts';
import { SESSION_STATES } from '../../src/sessions/index.ts';
import { END_CAUSES } from '../../src/sessions/model.ts';

const app = new URL('../../luci-app/', import.meta.url).pathname;
const htdocs = join(app, 'htdocs/luci-static/resources');
const viewDir = join(htdocs, 'view/sluice');
const views = readdirSync(viewDir).filter((f) => f.endsWith('.js'));
/** The customer's methods, called by the portal on the customer's behalf, not by LuCI. */
const PORTAL_METHODS = ['purchase', 'receipt', 'batch_channel', 'batch_refund'];
/** Roaming's: the fleet's lease service runs them through the MQTT command channel, a hook calls venue_claim. */
const VENUE_METHODS = ['venue_claim', 'venue_answer', 'venue_release', 'venue_open', 'venue_charge'];
const readJson = (rel: string) => JSON.parse(readFileSync(join(app, rel), 'utf8')) as Record<string, any>;

/** Every LuCI module the app ships (views, the shared module, the Overview widget), relative to resources/. */
function modules(dir = htdocs, rel = ''): string[] {
  return readdirSync(join(dir, rel), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? modules(dir, join(rel, e.name)) : e.name.endsWith('.js') ? [join(rel, e.name)] : [],
  );
}

test('menu and ACL JSON parse; menu points at existing views and the ACL', () => {
  const menu = readJson('root/usr/share/luci/menu.d/luci-app-sluice.json');
  const acl = readJson('root/usr/share/rpcd/acl.d/luci-app-sluice.json');
  assert.equal(menu['admin/services/sluice'].action, { type: 'alias', path: 'admin/services/sluice/sessions' });
  assert.equal(menu['admin/services/sluice'].depends.acl, ['luci-app-sluice']);
  for (const [path, entry] of Object.entries(menu)) {
    if (entry.action.type === 'view') assert.ok(views.includes(`${entry.action.path.replace('sluice/', '')}.js`), path);
    if (entry.action.type === 'alias') assert.ok(entry.action.path in menu, path);
  }
  const a = acl['luci-app-sluice'];
  assert.equal(a.read.uci, ['sluice']);
  // The secrets file only in the write role, read included (rpcd's table notation grants the functions listed).
  assert.equal(a.write.uci, { sluice: ['write'], sluice_secrets: ['read', 'write'] });
  // Read is for anyone who may look: no admin method; write holds the admin methods.
  for (const m of a.read.ubus.sluice) assert.is(METHODS[m]?.adminOnly, false, `read: ${m}`);
  for (const m of a.write.ubus.sluice) assert.is(METHODS[m]?.adminOnly, true, `write: ${m}`);
  assert.equal(
    [...a.read.ubus.sluice, ...a.write.ubus.sluice].sort(),
    Object.keys(METHODS)
      .filter((m) => !PORTAL_METHODS.includes(m) && !VENUE_METHODS.includes(m))
      .sort(),
    "LuCI may call every method but the portal's and roaming's",
  );
  // Service control: only this package's own init script, never rc's init (which starts/stops any service).
  assert.equal(a.read.ubus.rc, ['list']);
  assert.not.ok(JSON.stringify(a).includes('"init"'));
  assert.equal(
    Object.keys(a.write.file).sort(),
    ['start', 'stop', 'restart', 'reload'].map((x) => `/etc/init.d/sluice ${x}`).sort(),
  );
});

test('every rpc.declare names a method that exists, with arguments it takes, granted by the ACL', () => {
  const acl = readJson('root/usr/share/rpcd/acl.d/luci-app-sluice.json')['luci-app-sluice'];
  const granted = (object: string, method: string) =>
    [...(acl.read.ubus[object] ?? []), ...(acl.write.ubus[object] ?? [])].includes(method);
  // rpcd's own objects the app uses, with the arguments rpcd's rc plugin takes.
  const rpcd: Record<string, Record<string, string[]>> = {
    rc: { list: ['name', 'skip_running_check'] },
    session: { access: ['scope', 'object', 'function'] },
  };
  /** Granted by luci-base's own ACL to every session (LuCI's form.js asks it too), not by this app's. */
  const luciBase = new Set(['session.access']);
  const used = new Set<string>();
  for (const file of modules()) {
    const src = readFileSync(join(htdocs, file), 'utf8');
    for (const m of src.matchAll(/rpc\.declare\(\{([^}]*)\}/g)) {
      const object = /object:\s*'([^']+)'/.exec(m[1]!)?.[1];
      const method = /method:\s*'([^']+)'/.exec(m[1]!)?.[1];
      const params = [...(/params:\s*\[([^\]]*)\]/.exec(m[1]!)?.[1] ?? '').matchAll(/'([^']+)'/g)].map((x) => x[1]!);
      assert.ok(object && method, `${file}: ${m[0]}`);
      const takes =
        object === 'sluice' ? METHODS[method!] && Object.keys(METHODS[method!]!.args) : rpcd[object!]?.[method!];
      assert.ok(takes, `${file}: ${object}.${method} exists`);
      for (const p of params) assert.ok(takes!.includes(p), `${file}: ${object}.${method} takes ${p}`);
      assert.ok(
        luciBase.has(`${object}.${method}`) || granted(object!, method!),
        `${file}: ${object}.${method} is granted`,
      );
      used.add(`${object}.${method}`);
    }
    // fs.exec of the init script: only the actions the ACL grants.
    if (src.includes("fs.exec('/etc/init.d/sluice'")) used.add('file.exec');
  }
  for (const m of [...acl.read.ubus.sluice, ...acl.write.ubus.sluice]) {
    // logout, change and sales: granted for an rpcd user that calls them (a PC system, a back end, the fleet's check of
    // its revenue), no view uses them yet.
    if (m !== 'session' && m !== 'logout' && m !== 'change' && m !== 'sales')
      assert.ok(used.has(`sluice.${m}`), `ACL grants sluice.${m}: a view uses it`);
  }
  assert.ok(used.has('file.exec') && granted('file', 'exec'));
});

/**
 * The counter's staff role and why each other method is outside it: a new ubus method fails here until it is put on
 * one side. Outside: everything that shows a secret or money held, changes money or settings, or makes a session.
 */
const STAFF_OUTSIDE: Record<string, string> = {
  purchase: "the customer's own",
  receipt: "the customer's own",
  batch_channel: "the customer's own",
  batch_refund: "the customer's own (money back)",
  quote: 'not needed at the counter',
  grant: 'a session from nothing (free access)',
  change: 'lowers limits, sets speed tiers',
  move: 'not a counter act',
  remove_device: 'not a counter act',
  logout: 'ends every session of a user',
  reload: 'settings',
  stats: 'revenue',
  sales: 'revenue',
  cashu_balance: 'money held',
  cashu_payout: 'payout',
  venue_claim: "the venue's lease service's (roaming)",
  venue_answer: "the venue's lease service's (roaming)",
  venue_release: "the venue's lease service's (roaming)",
  venue_open: "the venue's lease service's (roaming)",
  venue_charge: "the venue's lease service's (roaming)",
};
const STAFF_INSIDE = [
  'sessions',
  'session',
  'pricing',
  'voucher_list',
  'voucher_create',
  'voucher_revoke',
  'extend',
  'terminate',
];

test('the staff role: the counter methods, every other sluice method outside it for a reason, no settings', () => {
  const acl = readJson('root/usr/share/rpcd/acl.d/luci-app-sluice-staff.json');
  assert.equal(Object.keys(acl), ['luci-app-sluice-staff']);
  const role = acl['luci-app-sluice-staff'];
  const sluice = [...role.read.ubus.sluice, ...role.write.ubus.sluice];
  assert.equal([...sluice].sort(), [...STAFF_INSIDE].sort());
  for (const m of Object.keys(METHODS)) {
    assert.ok(STAFF_INSIDE.includes(m) !== m in STAFF_OUTSIDE, `${m}: inside or outside the staff role, once`);
  }
  for (const m of Object.keys(STAFF_OUTSIDE)) assert.ok(m in METHODS, `${m} is a method`);
  // Writes are admin methods; reads are not, but for the till's batch list.
  for (const m of role.write.ubus.sluice) assert.is(METHODS[m]?.adminOnly, true, m);
  for (const m of role.read.ubus.sluice) assert.is(METHODS[m]?.adminOnly, m === 'voucher_list', m);
  // Nothing of settings or service control: uci only LuCI's own file (its look), no exec, no rc, no sluice_secrets.
  assert.equal(role.read.uci, ['luci']);
  assert.not.ok('uci' in role.write);
  assert.equal(Object.keys(role.read.ubus).sort(), ['file', 'luci', 'sluice', 'uci']);
  assert.equal(role.read.ubus.uci, ['changes']);
  assert.equal(role.read.ubus.file, ['read', 'list']);
  assert.equal(role.read.file, {
    '/usr/share/sluice/portal/qr.js': ['read'],
    '/www/luci-static/resources/preload': ['list'],
  });
  assert.equal(Object.keys(role.write), ['ubus']);
  assert.equal(Object.keys(role.write.ubus), ['sluice']);
  // The menu: the Counter page for the role, the admin pages for the admin role only.
  const menu = readJson('root/usr/share/luci/menu.d/luci-app-sluice.json');
  assert.equal(menu['admin/services/sluice_counter'].depends.acl, ['luci-app-sluice-staff']);
  assert.is(menu['admin/services/sluice_counter'].action.path, 'sluice/counter');
});

test('the Counter page calls only what the staff role grants', () => {
  const role = readJson('root/usr/share/rpcd/acl.d/luci-app-sluice-staff.json')['luci-app-sluice-staff'];
  const granted = [...role.read.ubus.sluice, ...role.write.ubus.sluice];
  const common = readFileSync(join(htdocs, 'sluice/common.js'), 'utf8');
  const src = readFileSync(join(viewDir, 'counter.js'), 'utf8');
  // common.js's functions by the sluice method they call
  const via: Record<string, string> = {};
  for (const m of common.matchAll(/var (call\w+) = rpc\.declare\(\{ object: 'sluice', method: '(\w+)'/g))
    via[m[1]!] = m[2]!;
  const fn: Record<string, string[]> = {};
  for (const m of common.matchAll(/^\t(\w+): function\([^)]*\) \{([^\n]*)/gm)) {
    fn[m[1]!] = [...m[2]!.matchAll(/(call\w+)/g)].map((x) => via[x[1]!]).filter((x): x is string => !!x);
  }
  // extend's body spans lines: its two declarations
  fn.extend = ['extend'];
  const used = new Set<string>();
  for (const m of src.matchAll(/method: '(\w+)'/g)) used.add(m[1]!);
  for (const m of src.matchAll(/common\.(\w+)\(/g)) for (const x of fn[m[1]!] ?? []) used.add(x);
  assert.ok(used.has('extend') && used.has('terminate') && used.has('sessions'), [...used].join());
  for (const m of used) assert.ok(granted.includes(m), `counter.js calls sluice.${m}, granted to staff`);
  assert.not.ok(src.includes("'require uci'"), 'the Counter page reads no config');
});

test('the state and end-cause labels cover every state and cause the daemon has', () => {
  const src = readFileSync(join(htdocs, 'sluice/common.js'), 'utf8');
  const block = (name: string) => new RegExp(`var ${name} = \\{([\\s\\S]*?)\\};`).exec(src)![1]!;
  const keys = (name: string) => [...block(name).matchAll(/^\s*'?([\w-]+)'?:/gm)].map((m) => m[1]!).sort();
  assert.equal(keys('STATES'), [...SESSION_STATES].sort());
  assert.equal(keys('CAUSES'), [...END_CAUSES].sort());
});

test('node --check passes on every module wrapped as LuCI loads it (a function body)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-luci-'));
  try {
    const all = modules();
    assert.ok(all.length >= 4, all.join(' '));
    for (const file of all) {
      const src = readFileSync(join(htdocs, file), 'utf8');
      assert.ok(/^'use strict';\n'require (view|baseclass)';/.test(src), file);
      const wrapped = join(dir, file.replaceAll('/', '_'));
      writeFileSync(wrapped, `(function (L, _, E, view, form, rpc, poll, uci, ui, dom) {\n${src}\n});\n`);
      execFileSync(process.execPath, ['--check', wrapped]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * LuCI's uci.js as far as the views use it: get (a section's object, pending changes applied, or one option), set,
 * unset; `changes` is what the next Save & Apply would send.
 */
class UciStub {
  readonly changes = new Map<string, string | string[] | null>();
  /** `secrets`: /etc/config/sluice_secrets by section; its changes are keyed `sluice_secrets.<sid>.<opt>`. */
  constructor(
    readonly values: Record<string, Record<string, string | string[]>> = {},
    readonly secrets: Record<string, Record<string, string | string[]>> = {},
  ) {}
  private of(conf: string) {
    return conf === 'sluice_secrets' ? this.secrets : this.values;
  }
  private key(conf: string, sid: string, opt: string) {
    return conf === 'sluice_secrets' ? `sluice_secrets.${sid}.${opt}` : `${sid}.${opt}`;
  }
  get(conf: string, sid: string, opt?: string): any {
    const s = this.of(conf)[sid];
    if (!s) return null;
    if (opt !== undefined) return s[opt];
    return s; // uci.js hands out its own object too
  }
  add(conf: string, type: string, sid: string) {
    this.of(conf)[sid] = { '.type': type };
    this.changes.set(`${conf}.${sid}`, type);
    return sid;
  }
  set(conf: string, sid: string, opt: string, value: string | string[]) {
    this.of(conf)[sid]![opt] = value;
    this.changes.set(this.key(conf, sid, opt), value);
  }
  unset(conf: string, sid: string, opt: string) {
    delete this.of(conf)[sid]![opt];
    this.changes.set(this.key(conf, sid, opt), null);
  }
  /** Sections of a type, in file order, each with its `.name`; a section without `.type` is a plan. */
  sections(_conf: string, type: string) {
    return Object.entries(this.values)
      .filter(([, o]) => (o['.type'] ?? 'pricing') === type)
      .map(([name, o]) => ({ '.name': name, ...o }));
  }
  load() {
    return Promise.resolve();
  }
}

/**
 * Runs settings.js against stub LuCI classes and returns its options by `section.option`. `secretsReadable`: what
 * rpcd's session access answers for reading sluice_secrets (true for the write role, false for a read-only user).
 */
function settingsOptions(
  uciData = new UciStub(),
  secretsReadable = true,
): Map<string, { validate?: (sid: string, v: string) => unknown; [k: string]: unknown }> {
  const options = new Map<string, any>();
  const notices: unknown[] = [];
  const sections = new Map<string, any>();
  let formValues: Record<string, string> = {};
  class Option {
    constructor(
      readonly section: any,
      readonly name: string,
      readonly title?: string,
      readonly description?: string,
    ) {}
    /** ListValue choices and depends() conditions, as the tests read them. */
    values: string[] = [];
    deps: Record<string, string>[] = [];
    value(v: string) {
      this.values.push(v);
    }
    depends(d: string | Record<string, string>, v?: string) {
      this.deps.push(typeof d === 'string' ? { [d]: v! } : d);
    }
    /** form.Value's widget, as far as the tests read it: the placeholder it shows. */
    renderWidget(_sid: string) {
      return (this as any).placeholder;
    }
    formvalue(sid: string) {
      return formValues[`${sid}.${this.name}`];
    }
    cfgvalue(sid: string) {
      return uciData.get('sluice', sid, this.name);
    }
    get map() {
      return this.section.map;
    }
  }
  let map: FormMap;
  class Section {
    readonly map = map;
    constructor(
      readonly name: string,
      readonly title?: string,
      readonly description?: string,
      readonly sectiontype?: string,
    ) {}
    tab() {}
    taboption(_tab: string, cls: any, name: string, title?: string, description?: string) {
      return this.option(cls, name, title, description);
    }
    option(_cls: any, name: string, title?: string, description?: string) {
      const o = new Option(this, name, title, description);
      options.set(`${this.name}.${name}`, o);
      return o;
    }
    formvalue(_sid: string, opt: string) {
      return formValues[opt];
    }
    /** LuCI's GridSection: open the editor / its Dismiss (isSaving after a successful Save). */
    renderMoreOptionsModal(sid: string) {
      return `editor ${sid}`;
    }
    handleModalCancel() {
      return 'closed';
    }
  }
  class NamedSection extends Section {}
  class FormMap {
    readonly config = 'sluice';
    readonly data = uciData;
    readonly chained: string[] = [];
    constructor() {
      map = this;
    }
    chain(config: string) {
      this.chained.push(config);
    }
    section(_cls: any, name: string, ...rest: string[]) {
      const s = _cls === NamedSection ? new Section(name, rest[1], rest[2], rest[0]) : new Section(name, ...rest);
      sections.set(name, s);
      return s;
    }
    render() {
      return this;
    }
    parse() {
      return Promise.resolve('parsed');
    }
    /** As LuCI's form.Map: [option, section id] of a NamedSection's option. */
    lookupOption(name: string, sid: string) {
      const o = options.get(`${sid}.${name}`);
      return o ? [o, sid] : null;
    }
  }
  const form = {
    Map: FormMap,
    NamedSection,
    GridSection: Section,
    Flag: Option,
    ListValue: Option,
    Value: Option,
    DummyValue: Option,
    DynamicList: Option,
  };
  const context = vm.createContext({
    _: (s: string) => s,
    form,
    ui: {
      addNotification(_t: unknown, body: unknown) {
        notices.push(body);
      },
    },
    uci: uciData,
    E: (...a: unknown[]) => a,
    view: { extend: (o: unknown) => o },
    URL,
    BigInt,
    L: { env: {} },
    rpc: { declare: () => async () => secretsReadable },
    common: { price: (v: string, _d: number, c: string) => `${v} ${c}`, size: (b: string) => `${b} B` },
  });
  vm.runInContext(
    'String.prototype.format = function () { var a = arguments, i = 0; return this.replace(/%[sd]/g, function ' +
      '() { return String(a[i++]); }); };',
    context,
  );
  const src = readFileSync(join(viewDir, 'settings.js'), 'utf8');
  const v = vm.runInContext(`(function () {\n${src}\n})()`, context) as { render(data: unknown): unknown };
  v.render([
    null,
    JSON.parse(readFileSync(join(app, 'htdocs/luci-static/resources/sluice/rules.json'), 'utf8')),
    null,
    secretsReadable,
  ]);
  (options as any).setForm = (values: Record<string, string>) => {
    formValues = values;
  };
  (options as any).sections = sections;
  (options as any).map = map!;
  (options as any).notices = notices;
  return options;
}

/**
 * The LuCI datatypes settings.js uses, with the semantics of luci-base's validation.js (parseInteger: optional minus
 * and digits; parseDecimal: the same with an optional fraction; lengths in UTF-8 bytes). Any other datatype fails the
 * test until it is modelled here.
 */
function luciDatatypeAccepts(type: string, value: string): boolean {
  const m = /^(\w+)(?:\((.*)\))?$/.exec(type.trim());
  if (!m) throw new Error(`cannot read datatype ${type}`);
  const args: string[] = [];
  let depth = 0,
    start = 0;
  const inner = m[2] ?? '';
  for (let i = 0; i <= inner.length; i++) {
    const c = inner[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if ((c === ',' && depth === 0) || i === inner.length) {
      if (i > start) args.push(inner.slice(start, i));
      start = i + 1;
    }
  }
  const integer = /^-?\d+$/.test(value) ? Number(value) : NaN;
  const decimal = /^-?\d+(?:\.\d+)?$/.test(value) ? Number(value) : NaN;
  switch (m[1]) {
    case 'and':
      return args.every((a) => luciDatatypeAccepts(a, value));
    case 'uinteger':
      return integer >= 0;
    case 'port':
      return integer >= 0 && integer <= 65535;
    case 'range':
      return decimal >= Number(args[0]) && decimal <= Number(args[1]);
    case 'min':
      return decimal >= Number(args[0]);
    case 'max':
      return decimal <= Number(args[0]);
    case 'minlength':
      return Buffer.byteLength(value) >= Number(args[0]);
    case 'maxlength':
      return Buffer.byteLength(value) <= Number(args[0]);
    default:
      throw new Error(`datatype ${m[1]} is not modelled by this test`);
  }
}

test('settings.js validators and datatypes agree with the loader', () => {
  const options = settingsOptions();
  const setForm = (options as any).setForm as (v: Record<string, string>) => void;
  const PLAN = `config pricing 'p'\n\toption price_per_step 1\n`;
  // [luci section.option, uci text builder, loader path, values to try, form context]
  const cases: [string, (v: string) => string, string, string[], Record<string, string>][] = [
    [
      'main.poll_interval',
      (v) => `config sluice 'main'\n\toption poll_interval '${v}'\n${PLAN}`,
      'main.poll_interval',
      ['0.2', '0.19', '3600', '3601', '2.5', 'x', '1e1'],
      {},
    ],
    [
      'main.checkpoint_interval',
      (v) => `config sluice 'main'\n\toption checkpoint_interval '${v}'\n${PLAN}`,
      'main.checkpoint_interval',
      ['5', '4.9', '86400', '86401'],
      {},
    ],
    [
      'main.ndsctl_timeout',
      (v) => `config sluice 'main'\n\toption ndsctl_timeout '${v}'\n${PLAN}`,
      'main.ndsctl_timeout',
      ['0.5', '0.4', '300', '301'],
      {},
    ],
    [
      'main.router_id',
      (v) => `config sluice 'main'\n\toption router_id '${v}'\n${PLAN}`,
      'main.router_id',
      ['cafe-1', 'a b', 'x'.repeat(64), 'x'.repeat(65), 'ü'],
      {},
    ],
    [
      'main.state_dir',
      (v) => `config sluice 'main'\n\toption state_dir '${v}'\n${PLAN}`,
      'main.state_dir',
      ['/etc/sluice', 'etc'],
      {},
    ],
    [
      'pricing.step_size',
      (v) =>
        `config pricing 'p'\n\toption metric bytes\n\toption price_per_step 1\n\toption max_steps 1\n\toption ` +
        `step_size '${v}'\n`,
      'pricing[p].step_size',
      ['100MiB', '1.5KiB', '0.5B', '1M', '15m', '2 G', '1mb', '0', '1.5', '10GB'],
      { metric: 'bytes' },
    ],
    [
      'pricing.step_size',
      (v) => `config pricing 'p'\n\toption price_per_step 1\n\toption step_size '${v}'\n`,
      'pricing[p].step_size',
      ['15m', '900', '1h', '1d', '1MiB', '0.5m', '0.1m', '1.5h'],
      { metric: 'seconds' },
    ],
    [
      'pricing.price_per_step',
      (v) => `config pricing 'p'\n\toption price_per_step '${v}'\n`,
      'pricing[p].price_per_step',
      ['0', '250000', '1.5', '-1', String(2n ** 128n - 1n), String(2n ** 128n)],
      {},
    ],
    [
      'pricing.currency',
      (v) => `config pricing 'p'\n\toption price_per_step 1\n\toption currency '${v}'\n`,
      'pricing[p].currency',
      ['USDC', 'US Dollar', 'x'.repeat(17)],
      {},
    ],
    [
      'pricing.asset',
      (v) => `config pricing 'p'\n\toption price_per_step 1\n\toption asset '${v}'\n`,
      'pricing[p].asset',
      [`0x${'a'.repeat(40)}`, '0x12', 'USDC'],
      {},
    ],
    [
      'mqtt.topic_prefix',
      (v) => `${PLAN}config mqtt 'mqtt'\n\toption enabled 1\n\toption url mqtt://b\n\toption topic_prefix '${v}'\n`,
      'mqtt.topic_prefix',
      ['sluice', 'a/b', 'a/#', '/a', 'a/'],
      {},
    ],
    [
      'mqtt.url',
      (v) => `${PLAN}config mqtt 'mqtt'\n\toption enabled 1\n\toption url '${v}'\n`,
      'mqtt.url',
      ['mqtt://b', 'wss://b/x', 'http://b', 'b:1883'],
      {},
    ],
    [
      'escrow.address',
      (v) =>
        `${PLAN}config escrow 'escrow'\n\toption enabled 1\n\toption facilitator_url http://f\n\toption seller ` +
        `0x${'b'.repeat(40)}\n\toption address '${v}'\n`,
      'escrow.address',
      [`0x${'B'.repeat(40)}`, '0x1', ''],
      {},
    ],
    [
      'escrow.seller',
      (v) =>
        `${PLAN}config escrow 'escrow'\n\toption enabled 1\n\toption facilitator_url http://f\n\toption ` +
        `address 0x${'b'.repeat(40)}\n\toption seller '${v}'\n`,
      'escrow.seller',
      [`0x${'B'.repeat(40)}`, '0x1', ''],
      {},
    ],
    [
      'radius.interim_interval',
      (v) =>
        `${PLAN}config radius 'radius'\n\toption enabled 1\n\toption server h\n\toption secret s\n\toption ` +
        `interim_interval '${v}'\n`,
      'radius.interim_interval',
      ['10', '9', '86400', '86401'],
      {},
    ],
    [
      'main.workers',
      (v) => `config sluice 'main'\n\toption workers '${v}'\n${PLAN}`,
      'main.workers',
      ['1', '16', '0', '17', '1.5', 'x'],
      {},
    ],
    [
      'pricing.decimals',
      (v) => `config pricing 'p'\n\toption price_per_step 1\n\toption decimals '${v}'\n`,
      'pricing[p].decimals',
      ['0', '36', '37', '1.5'],
      {},
    ],
    [
      'pricing.min_steps',
      (v) => `config pricing 'p'\n\toption price_per_step 1\n\toption min_steps '${v}'\n`,
      'pricing[p].min_steps',
      ['1', '100', '0', '2.5'],
      {},
    ],
    [
      'pricing.max_steps',
      (v) => `config pricing 'p'\n\toption price_per_step 1\n\toption min_steps 2\n\toption max_steps '${v}'\n`,
      'pricing[p].max_steps',
      ['2', '100', '1', '0', '2.5'],
      { min_steps: '2' },
    ],
    [
      'limits.max_devices_per_user',
      (v) => `${PLAN}config limits 'limits'\n\toption max_devices_per_user '${v}'\n`,
      'limits.max_devices_per_user',
      ['0', '1000000', '1000001', '1.5'],
      {},
    ],
    [
      'limits.max_sessions',
      (v) => `${PLAN}config limits 'limits'\n\toption max_sessions '${v}'\n`,
      'limits.max_sessions',
      ['0', '100000000', '100000001', '1.5'],
      {},
    ],
    ...(['auth_port', 'acct_port', 'coa_port'] as const).map(
      (option): [string, (v: string) => string, string, string[], Record<string, string>] => [
        `radius.${option}`,
        (v) =>
          `${PLAN}config radius 'radius'\n\toption enabled 1\n\toption server h\n\toption secret ` +
          `s\n\toption ${option} '${v}'\n`,
        `radius.${option}`,
        ['0', '1', '65535', '65536', '1.5'],
        {},
      ],
    ),
    [
      'radius.nas_identifier',
      (v) =>
        `${PLAN}config radius 'radius'\n\toption enabled 1\n\toption server h\n\toption secret s\n\toption ` +
        `nas_identifier '${v}'\n`,
      'radius.nas_identifier',
      ['nas-1', 'x'.repeat(253), 'x'.repeat(254)],
      {},
    ],
    ...(
      [
        ['retries', ['0', '10', '11', '1.5', '-1']],
        ['max_inflight', ['1', '128', '0', '129', '2.5']],
        ['queue_max', ['65536', '67108864', '65535', '67108865', '70000.5']],
        ['timeout', ['0.1', '0.09', '60', '61', '2.5']],
        ['backoff_max', ['1', '0.5', '3600', '3601']],
      ] as const
    ).map(([option, values]): [string, (v: string) => string, string, string[], Record<string, string>] => [
      `radius.${option}`,
      (v) =>
        `${PLAN}config radius 'radius'\n\toption enabled 1\n\toption server h\n\toption secret ` +
        `s\n\toption ${option} '${v}'\n`,
      `radius.${option}`,
      [...values],
      {},
    ]),
    ...(
      [
        ['network', ['eip155:1', 'eip155:84532', 'base-sepolia', 'arbitrum', 'eip155:0', 'solana', 'eip155:x']],
        ['credit_steps', ['0', '1000', '1001', '1.5', '-1']],
        ['close_grace', ['0', '2.5', '3600', '3601', 'x']],
      ] as const
    ).map(([option, values]): [string, (v: string) => string, string, string[], Record<string, string>] => [
      `escrow.${option}`,
      (v) =>
        `${PLAN}config escrow 'escrow'\n\toption enabled 1\n\toption facilitator_url http://f\n\toption ` +
        `address 0x${'b'.repeat(40)}\n\toption seller 0x${'b'.repeat(40)}\n\toption ${option} '${v}'\n`,
      `escrow.${option}`,
      [...values],
      {},
    ]),
    // x402 `exact`: every option the loader reads, with its checks.
    ...(
      [
        ['pay_to', [`0x${'B'.repeat(40)}`, '0x1', 'me', '']],
        ['facilitator_url', ['https://f.example', 'http://f:8080/x', 'ftp://f', 'http://f:6000', 'f', '']],
        ['network', ['eip155:8453', 'base', 'base-sepolia', 'eip155:0', 'eip155:9999999999999999', 'solana', '']],
        ['rpc_url', ['https://mainnet.base.org', 'http://127.0.0.1:8545', 'none', 'None', 'ws://x', 'http://x:10080']],
        ['timeout', ['1', '0.9', '120', '121', '2.5', 'x']],
        ['max_timeout_seconds', ['30', '29', '3600', '3601', '60.5']],
        ['token_name', ['USD Coin', 'x'.repeat(64), 'x'.repeat(65)]],
        ['token_version', ['2', 'x'.repeat(16), 'x'.repeat(17)]],
      ] as const
    ).map(([option, values]): [string, (v: string) => string, string, string[], Record<string, string>] => [
      `x402.${option}`,
      (v) => {
        const base: Record<string, string> = {
          facilitator_url: 'http://f',
          network: 'eip155:8453',
          pay_to: `0x${'b'.repeat(40)}`,
          [option]: v,
        };
        // An empty required value is an absent option (LuCI removes an emptied field).
        return (
          `config pricing 'p'\n\toption price_per_step 1\n\toption asset 0x${'a'.repeat(40)}\nconfig x402 ` +
          `'x402'\n\toption enabled 1\n` +
          Object.entries(base)
            .filter(([, x]) => x !== '')
            .map(([k, x]) => `\toption ${k} '${x}'\n`)
            .join('')
        );
      },
      `x402.${option}`,
      [...values],
      {},
    ]),
    // The LAN pay page: 0.0.0.0 and :: in any spelling are refused, as by the loader.
    [
      'http.listen',
      (v) => `${PLAN}config http 'http'\n\toption listen '${v}'\n`,
      'http.listen',
      [
        '192.168.1.1:2122',
        '[fd00::1]:2122',
        'router.lan:80',
        '0.0.0.0:2122',
        '[::]:2122',
        '0:2122',
        '0x0:80',
        '[::ffff:0.0.0.0]:80',
        '192.168.1.1',
        '192.168.1.1:0',
        '192.168.1.1:65536',
        'a b:1',
      ],
      {},
    ],
    [
      'http.rate_limit',
      (v) => `${PLAN}config http 'http'\n\toption rate_limit '${v}'\n`,
      'http.rate_limit',
      ['1', '10000', '0', '10001', '1.5'],
      {},
    ],
    // x402 batch settlement and the session-event hook (every payment method and upstream from LuCI).
    ...(
      [
        ['facilitator_url', ['https://f.example', 'ftp://f', 'f', '']],
        ['network', ['eip155:8453', 'base-sepolia', 'eip155:0', 'solana']],
        ['receiver', [`0x${'B'.repeat(40)}`, '0x1', '']],
        ['receiver_authorizer', [`0x${'C'.repeat(40)}`, 'x', '']],
        ['withdraw_delay', ['900', '899', '2592000', '2592001', '1000.5', 'x']],
        ['refund_idle', ['0', '2.5', '2592000', '2592001', 'x']],
        ['timeout', ['1', '0.9', '120', '121', '2.5']],
        ['token_name', ['USD Coin', 'x'.repeat(64), 'x'.repeat(65)]],
        ['token_version', ['2', 'x'.repeat(16), 'x'.repeat(17)]],
      ] as const
    ).map(([option, values]): [string, (v: string) => string, string, string[], Record<string, string>] => [
      `batch_settlement.${option}`,
      (v) => {
        const base: Record<string, string> = {
          facilitator_url: 'http://f',
          receiver: `0x${'b'.repeat(40)}`,
          receiver_authorizer: `0x${'c'.repeat(40)}`,
          [option]: v,
        };
        return (
          `${PLAN}config batch_settlement 'batch_settlement'\n\toption enabled 1\n` +
          Object.entries(base)
            .filter(([, x]) => x !== '')
            .map(([k, x]) => `\toption ${k} '${x}'\n`)
            .join('')
        );
      },
      `batch_settlement.${option}`,
      [...values],
      {},
    ]),
    ...(
      [
        ['url', ['https://pc.example.net/sluice', 'http://10.0.0.2:8080/x', 'ftp://f', 'f', '']],
        ['secret', ['x'.repeat(16), 'x'.repeat(15), '']],
        ['timeout', ['1', '0.9', '300', '301', '2.5', 'x']],
        ['backoff_max', ['1', '0.5', '86400', '86401']],
        ['queue_max', ['65536', '1MiB', '1GiB', '65535', '1.5GiB', 'x']],
      ] as const
    ).map(([option, values]): [string, (v: string) => string, string, string[], Record<string, string>] => [
      `hook.${option}`,
      (v) => {
        const base: Record<string, string> = {
          url: 'https://pc.example.net/sluice',
          secret: 's'.repeat(16),
          [option]: v,
        };
        return (
          `${PLAN}config hook 'hook'\n\toption enabled 1\n` +
          Object.entries(base)
            .filter(([, x]) => x !== '')
            .map(([k, x]) => `\toption ${k} '${x}'\n`)
            .join('')
        );
      },
      `hook.${option}`,
      [...values],
      {},
    ]),
    // x402 upto: every option the loader reads, with its bounds.
    ...(
      [
        ['facilitator_url', ['https://f.example', 'http://f:8080/x', 'ftp://f', 'http://f:6000', 'f', '']],
        ['network', ['eip155:8453', 'base-sepolia', 'eip155:0', 'solana']],
        ['pay_to', [`0x${'B'.repeat(40)}`, '0x1', '']],
        ['max_timeout_seconds', ['900', '899', '86400', '2592000', '2592001', '1000.5', 'x']],
        ['timeout', ['1', '0.9', '120', '121', '2.5', 'x']],
      ] as const
    ).map(([option, values]): [string, (v: string) => string, string, string[], Record<string, string>] => [
      `upto.${option}`,
      (v) => {
        const base: Record<string, string> = {
          facilitator_url: 'http://f',
          pay_to: `0x${'b'.repeat(40)}`,
          [option]: v,
        };
        return (
          `${PLAN}config upto 'upto'\n\toption enabled 1\n` +
          Object.entries(base)
            .filter(([, x]) => x !== '')
            .map(([k, x]) => `\toption ${k} '${x}'\n`)
            .join('')
        );
      },
      `upto.${option}`,
      [...values],
      {},
    ]),
    // PC-sync and the RFC 8908 URLs on the LAN pay page.
    [
      'http.pcsync_secret',
      (v) => `${PLAN}config http 'http'\n\toption pcsync_secret '${v}'\n`,
      'http.pcsync_secret',
      ['x'.repeat(16), 'x'.repeat(15), 'ü'.repeat(16)],
      {},
    ],
    [
      'http.pcsync_window',
      (v) => `${PLAN}config http 'http'\n\toption pcsync_window '${v}'\n`,
      'http.pcsync_window',
      ['5', '4.9', '300', '3600', '3601', '2.5', 'x'],
      {},
    ],
    ...(['portal_url', 'venue_url'] as const).map(
      (option): [string, (v: string) => string, string, string[], Record<string, string>] => [
        `http.${option}`,
        (v) => `${PLAN}config http 'http'\n\toption ${option} '${v}'\n`,
        `http.${option}`,
        [
          'https://wifi.example.net/portal',
          'http://192.168.1.1:2122/portal',
          'ftp://x',
          'wifi.example.net',
          'http://a:6000/',
          `https://a.example/${'x'.repeat(480)}`,
          `https://a.example/${'x'.repeat(500)}`,
        ],
        {},
      ],
    ),
    // Plan fields.
    [
      'pricing.display_name',
      (v) => `config pricing 'p'\n\toption price_per_step 1\n\toption display_name '${v}'\n`,
      'pricing[p].display_name',
      [
        'Hour pass',
        'x'.repeat(64),
        'x'.repeat(65),
        'ü'.repeat(64),
        '😀'.repeat(64),
        '😀'.repeat(65),
        '   ',
        'a\tb',
        'a\u0085b',
        'Café – 1 h',
      ],
      {},
    ],
    [
      'pricing.devices',
      (v) => `config pricing 'p'\n\toption price_per_step 1\n\toption devices '${v}'\n`,
      'pricing[p].devices',
      ['1', '3', '16', '0', '17', '1.5', 'x', '-1'],
      {},
    ],
    ...(['rate_down', 'rate_up'] as const).map(
      (option): [string, (v: string) => string, string, string[], Record<string, string>] => [
        `pricing.${option}`,
        (v) => `config pricing 'p'\n\toption price_per_step 1\n\toption ${option} '${v}'\n`,
        `pricing[p].${option}`,
        [
          '2mbit',
          '512kbit',
          '8M',
          '1.5mbit',
          '8000',
          '7999',
          '8kbit',
          '10gbit',
          '10.1gbit',
          '2 mbit',
          '2Mbps',
          'x',
          '2mb',
          '-1mbit',
        ],
        {},
      ],
    ),
  ];
  for (const [key, build, path, values, ctx] of cases) {
    const o = options.get(key);
    assert.ok(o?.validate || o?.datatype, `${key} has a validator or a datatype`);
    setForm(ctx);
    for (const value of values) {
      const luciOk =
        (typeof o.datatype !== 'string' || value === '' || luciDatatypeAccepts(o.datatype, value)) &&
        (!o.validate || o.validate('p', value) === true);
      let loaderOk = true;
      try {
        configFromUci(parseUci(build(value)));
      } catch (err) {
        assert.instance(err, ConfigError);
        loaderOk = !(err as ConfigError).problems.some((p) => p.path === path);
      }
      assert.is(
        luciOk,
        loaderOk,
        `${key} = ${JSON.stringify(value)}: LuCI ${luciOk ? 'accepts' : 'rejects'}, ` +
          `loader ${loaderOk ? 'accepts' : 'rejects'}`,
      );
    }
  }
});

/** Every option the loader reads, per section type (it reads through UciSection.options.get). */
function loaderOptions(): Map<string, Set<string>> {
  const read = new Map<string, Set<string>>();
  const section = (type: string, name: string) => {
    const seen = read.get(type) ?? new Set<string>();
    read.set(type, seen);
    const options = new (class extends Map<string, string | string[]> {
      override get(key: string) {
        seen.add(key);
        return undefined;
      }
    })();
    return { type, name, anonymous: false, index: 0, options } as any;
  };
  // Enabled upstreams, so every option of theirs is read.
  const pkg = {
    sections: [
      section('sluice', 'main'),
      section('pricing', 'p'),
      ...['radius', 'mqtt', 'escrow', 'x402', 'batch_settlement', 'upto', 'hook', 'limits', 'http'].map((t) =>
        section(t, t),
      ),
    ],
  } as any;
  for (const s of pkg.sections)
    if (!['sluice', 'pricing', 'limits', 'http'].includes(s.type))
      s.options.get = function (k: string) {
        read.get(s.type)!.add(k);
        return k === 'enabled' ? '1' : undefined;
      };
  configFromUciPartial(pkg);
  return read;
}

test('every UCI option the Settings page writes is one the loader reads, and vice versa', () => {
  const docs = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  const luci = new Map<string, Set<string>>();
  for (const key of settingsOptions().keys()) {
    const [section, option] = key.split('.') as [string, string];
    if (option.startsWith('_')) continue; // display only (the price preview), never written
    const type = section === 'main' ? 'sluice' : section;
    luci.set(type, (luci.get(type) ?? new Set()).add(option));
    assert.ok(docs.includes(`\`${option}\``), `${key} is documented`);
  }
  // Options the page leaves to the file on purpose, each with its reason.
  const notInLuci: Record<string, string> = {
    'sluice.min_read_interval':
      'a CPU-for-precision trade for weak routers, documented in docs/operations.md; the default suits most',
    'sluice.portal_output_max':
      'a safety cap against a broken or hostile portal; the default fits any router, so the page does not offer it',
    'sluice.kernel_quota':
      "on in the package's config; off is a diagnosis step for the file (docs/operations.md), not a setting to " +
      'toggle in passing',
    'sluice.nft': "a command for unusual setups (a wrapper entering a namespace), like ndsctl's list form",
    'sluice.tc': 'a command for unusual setups, like nft',
    'sluice.shape_device': "the portal's own device by default; an override is an unusual setup for the file",
    'sluice.venue': "set with the fleet's venue file and mqtt.commands (docs/roaming.md), not alone on one router",
    'sluice.venue_present_window': 'a roaming tuning for the file (docs/roaming.md); the default suits most venues',
    'sluice.venue_lease_ttl': "the fleet's --lease-ttl, set with the fleet's venue file (docs/roaming.md)",
  };
  const loader = loaderOptions();
  for (const [type, options] of luci) {
    for (const o of options) assert.ok(loader.get(type)?.has(o), `Settings writes ${type}.${o}: the loader reads it`);
  }
  for (const [type, options] of loader) {
    for (const o of options) {
      assert.ok(
        luci.get(type)?.has(o) || `${type}.${o}` in notInLuci,
        `the loader reads ${type}.${o}: Settings offers it`,
      );
    }
  }
});

/** The options a cross-field rule reads (each of them refuses a value that breaks it). */
const ruleUses = (r: (typeof CROSS_RULES)[number]): string[] =>
  r.kind === 'at_least' ? [r.option, r.other] : r.kind === 'product_at_most' ? [...r.factors] : [r.option];
const ruleOfReason = (reason: string) => CROSS_RULES.find((r) => reason.startsWith(r.reason.split('%s')[0]!));

test(
  'cross-field rules (sluice/rules.json): every field a rule reads refuses exactly what the loader refuses, both ' +
    'ways',
  () => {
    const options = settingsOptions();
    const setForm = (options as any).setForm as (v: Record<string, string>) => void;
    const ASSET = `0x${'a'.repeat(40)}`;
    const fired = new Set<string>();
    let combos = 0;
    for (const metric of ['bytes', 'seconds']) {
      for (const step of ['', '1', '1TiB', '100MiB', '1d', 'x']) {
        for (const min of ['', '1', '5', '200', '0']) {
          for (const max of ['', '3', '150', '10000', '9007199254740991', 'y']) {
            for (const [escrow, x402] of [
              ['0', '0'],
              ['1', '0'],
              ['0', '1'],
            ]) {
              for (const asset of ['', ASSET]) {
                combos++;
                const form: Record<string, string> = {
                  metric,
                  step_size: step,
                  min_steps: min,
                  max_steps: max,
                  asset,
                  'escrow.enabled': escrow!,
                  'x402.enabled': x402!,
                };
                setForm(form);
                const uci =
                  `config pricing 'p'\n\toption price_per_step 1\n\toption metric ${metric}\n` +
                  Object.entries({ step_size: step, min_steps: min, max_steps: max, asset })
                    .map(([k, v]) => (v === '' ? '' : `\toption ${k} '${v}'\n`))
                    .join('') +
                  `config escrow 'escrow'\n\toption enabled ${escrow}\n\toption facilitator_url ` +
                  `http://f\n\toption address ${ASSET}\n\toption seller ${ASSET}\n` +
                  `config x402 'x402'\n\toption enabled ${x402}\n\toption facilitator_url http://f\n\toption ` +
                  `network eip155:8453\n\toption pay_to ${ASSET}\n`;
                let problems: { path: string; reason: string }[] = [];
                try {
                  configFromUci(parseUci(uci));
                } catch (err) {
                  problems = [...(err as ConfigError).problems];
                }
                for (const p of problems) {
                  const r = ruleOfReason(p.reason);
                  if (r) fired.add(r.id);
                }
                for (const option of ['step_size', 'min_steps', 'max_steps', 'asset']) {
                  const o = options.get(`pricing.${option}`)!;
                  // The loader's problems this field is part of: its own value, or a rule that reads it.
                  const own = problems
                    .filter((p) => p.path === `pricing[p].${option}` && !ruleOfReason(p.reason))
                    .map((p) => p.reason);
                  const crossed = problems
                    .filter((p) => ruleOfReason(p.reason) && ruleUses(ruleOfReason(p.reason)!).includes(option))
                    .map((p) => p.reason);
                  const datatypeOk =
                    typeof o.datatype !== 'string' ||
                    form[option] === '' ||
                    luciDatatypeAccepts(o.datatype as string, form[option]!);
                  const verdict = datatypeOk ? (o.validate ? o.validate('p', form[option]!) : true) : 'datatype';
                  const loaderRefuses = own.length + crossed.length > 0;
                  assert.is(
                    verdict !== true,
                    loaderRefuses,
                    `${JSON.stringify(form)} ${option}: LuCI ${String(verdict)}, loader ${JSON.stringify(problems)}`,
                  );
                  if (typeof verdict === 'string' && verdict !== 'datatype' && own.length === 0) {
                    assert.ok(
                      crossed.some((r) => verdict.endsWith(r)),
                      `${option}: LuCI says ${verdict}, the loader ${JSON.stringify(crossed)}`,
                    );
                  }
                }
              }
            }
          }
        }
      }
    }
    assert.ok(combos > 1000, String(combos));
    assert.equal([...fired].sort(), CROSS_RULES.map((r) => r.id).sort(), 'every rule in the table was exercised');
  },
);

test('plan editor: a refused edit writes nothing, and ' + 'Dismiss puts the plan back as it was', async () => {
  const before = { metric: 'bytes', step_size: '100MiB', price_per_step: '100000', max_steps: '10' };
  const data = new UciStub({ p: { ...before } });
  const options = settingsOptions(data);
  const setForm = (options as any).setForm as (v: Record<string, string>) => void;
  const grid = (options as any).sections.get('pricing');
  // The admin's edit: 1 TiB steps × 10000 (over 2^53 bytes), and a new currency that is fine on its own.
  const edited: Record<string, string> = { ...before, step_size: '1TiB', max_steps: '10000', currency: 'EUR' };
  setForm(edited);
  assert.is(grid.renderMoreOptionsModal('p'), 'editor p');
  const fields = [...options.entries()]
    .filter(([k]) => k.startsWith('pricing.') && !k.startsWith('pricing._'))
    .map(([, o]) => o as any);
  const accepted = (o: any) => {
    const v = edited[o.name] ?? '';
    if (typeof o.datatype === 'string' && v !== '' && !luciDatatypeAccepts(o.datatype, v)) return false;
    return !o.validate || o.validate('p', v) === true;
  };
  // The editor's map as LuCI builds it: its parse writes every accepted field and fails on a refused one.
  const modalMap: any = {
    parse: () =>
      Promise.all(
        fields.map((o) => {
          if (!accepted(o)) return Promise.reject(new TypeError(`${o.name} refused`));
          if ((edited[o.name] ?? '') !== (data.get('sluice', 'p', o.name) ?? '') && edited[o.name] !== undefined)
            data.set('sluice', 'p', o.name, edited[o.name]!);
          return Promise.resolve();
        }),
      ),
  };
  const modalSection = {
    map: modalMap,
    cfgsections: () => ['p'],
    children: fields.map((o) => ({
      option: o.name,
      title: o.title,
      isActive: () => true,
      isValid: () => accepted(o),
      getUIElement: () => null,
    })),
  };
  modalMap.children = [modalSection];
  grid.addModalOptions(modalSection, 'p');
  assert.equal(
    fields
      .filter((o) => !accepted(o))
      .map((o) => o.name)
      .sort(),
    ['max_steps', 'step_size'],
    'the rule refuses every field it reads',
  );
  const refusal = await modalMap.parse().then(
    () => null,
    (e: Error) => e.message,
  );
  assert.ok(refusal && refusal.includes('Step') && refusal.includes('Maximum steps'), String(refusal));
  assert.equal([...data.changes.keys()], [], 'a refused edit writes nothing, not even the valid currency');

  // Whatever an editor did write (a field LuCI saved on its own), Dismiss undoes it before Save & Apply.
  data.set('sluice', 'p', 'step_size', '1TiB');
  data.set('sluice', 'p', 'currency', 'EUR');
  grid.handleModalCancel(modalMap, null, false);
  assert.equal(data.get('sluice', 'p'), before);
  for (const [key, value] of data.changes)
    assert.is(value, (before as Record<string, string>)[key.split('.')[1]!] ?? null, key);

  // A Save that went through is kept: its Dismiss (isSaving) restores nothing.
  grid.renderMoreOptionsModal('p');
  data.set('sluice', 'p', 'max_steps', '20');
  grid.handleModalCancel(modalMap, null, true);
  assert.is(data.get('sluice', 'p', 'max_steps'), '20');
});

test('help texts: <placeholders> are escaped, so they show instead of vanishing as HTML tags', () => {
  const options = settingsOptions();
  const texts = [...options.values()]
    .map((o) => o.description as string | undefined)
    .concat([...(options as any).sections.values()].map((s: any) => s.description as string | undefined))
    .filter((t): t is string => typeof t === 'string' && t !== '');
  assert.ok(texts.length > 50, String(texts.length));
  for (const t of texts) {
    for (const m of t.matchAll(/<\/?([A-Za-z][^\s>/]*)[^>]*>/g))
      assert.ok(['code', 'br', 'em', 'strong'].includes(m[1]!.toLowerCase()), `${t}: <${m[1]}> is not HTML`);
  }
  for (const shown of [
    'eip155:&lt;chain id&gt;',
    'sluice-&lt;router ID&gt;',
    '&lt;state directory&gt;/mqtt-outbox',
    '&lt;prefix&gt;/&lt;router ID&gt;/cmd',
  ]) {
    assert.ok(
      texts.some((t) => t.includes(shown)),
      shown,
    );
  }
});

test('plan grid: an option left empty shows the daemon\'s default, not "none"', () => {
  const data = new UciStub({
    p: { price_per_step: '1' },
    q: { metric: 'bytes', price_per_step: '1', min_steps: '150', currency: 'EUR' },
  });
  const options = settingsOptions(data);
  const cell = (option: string, sid: string) => (options.get(`pricing.${option}`) as any).textvalue(sid);
  assert.equal(
    ['currency', 'decimals', 'min_steps', 'max_steps', 'step_size'].map((o) => cell(o, 'p')),
    ['USDC', '6', '1', '100', '60'],
  );
  assert.equal(
    ['currency', 'min_steps', 'max_steps', 'step_size'].map((o) => cell(o, 'q')),
    ['EUR', '150', '150', '1MiB'],
  );
  // The loader's defaults, the same figures.
  const plan = configFromUci(parseUci(`config pricing 'p'\n\toption price_per_step 1\n`)).pricing[0]!;
  assert.equal(
    [plan.currency, String(plan.decimals), String(plan.minSteps), String(plan.maxSteps), String(plan.stepSize)],
    ['USDC', '6', '1', '100', '60'],
  );
});

test("plan editor placeholders are the daemon's defaults, never an example that reads as one (real " + 'LuCI)', () => {
  const options = settingsOptions(
    new UciStub({ p: { price_per_step: '1' }, q: { metric: 'bytes', price_per_step: '1' } }),
  );
  const step = options.get('pricing.step_size') as any;
  // An empty step means 60 s (time) or 1 MiB (data): the greyed text in the field says that, per plan.
  assert.is(step.renderWidget('p'), '60');
  assert.is(step.renderWidget('q'), '1MiB');
  // Empty validity and empty trial interval mean "none": no greyed 24h / 1d suggesting a default.
  for (const o of ['time_limit', 'trial_every'])
    assert.not.ok((options.get(`pricing.${o}`) as any).placeholder, `${o} has no placeholder`);
});

test(
  'RADIUS servers: a list with a server is not "Required" although LuCI validates the empty add field beside it ' +
    '(real LuCI)',
  () => {
    const options = settingsOptions();
    const setForm = (options as any).setForm as (v: Record<string, unknown>) => void;
    const server = options.get('radius.server')!;
    // ui.DynamicList calls the option's validator with the text of its (empty) add field, not with the items.
    setForm({ 'radius.server': ['192.0.2.10'] as any });
    assert.is(server.validate!('radius', ''), true);
    setForm({ 'radius.server': '192.0.2.10' });
    assert.is(server.validate!('radius', ''), true);
    setForm({ 'radius.server': [] as any });
    assert.is(server.validate!('radius', ''), 'Required');
    assert.is(server.validate!('radius', 'radius.example.net'), true);
  },
);

test(
  'MQTT client certificate and key: both or neither, refused before saving as the loader does (real LuCI: the ' +
    'file was written and MQTT disabled)',
  () => {
    const options = settingsOptions();
    const setForm = (options as any).setForm as (v: Record<string, string>) => void;
    const build = (cert: string, key: string) =>
      `config pricing 'p'\n\toption price_per_step 1\nconfig mqtt 'mqtt'\n\toption enabled 1\n\toption url mqtt://b\n` +
      (cert ? `\toption cert_file '${cert}'\n` : '') +
      (key ? `\toption key_file '${key}'\n` : '');
    for (const [cert, key] of [
      ['/etc/c.pem', ''],
      ['', '/etc/k.pem'],
      ['/etc/c.pem', '/etc/k.pem'],
      ['', ''],
      ['c.pem', '/etc/k.pem'],
    ]) {
      setForm({ cert_file: cert!, key_file: key! });
      const luciOk =
        options.get('mqtt.cert_file')!.validate!('mqtt', cert!) === true &&
        options.get('mqtt.key_file')!.validate!('mqtt', key!) === true;
      let loaderOk = true;
      try {
        configFromUci(parseUci(build(cert!, key!)));
      } catch (err) {
        loaderOk = !(err as ConfigError).problems.some((p) => p.path.startsWith('mqtt.'));
      }
      assert.is(luciOk, loaderOk, `cert ${JSON.stringify(cert)}, key ${JSON.stringify(key)}`);
    }
  },
);

test(
  'x402 batch settlement and the session-event hook are on the Settings page, with help (every payment ' +
    'method and upstream)',
  () => {
    const options = settingsOptions();
    for (const o of [
      'enabled',
      'facilitator_url',
      'network',
      'receiver',
      'receiver_authorizer',
      'withdraw_delay',
      'refund',
      'refund_idle',
      'timeout',
      'token_name',
      'token_version',
    ]) {
      assert.ok(options.get(`batch_settlement.${o}`), `batch_settlement.${o}`);
      if (o !== 'enabled')
        assert.ok(options.get(`batch_settlement.${o}`)!.description, `batch_settlement.${o} has help`);
    }
    for (const o of ['enabled', 'url', 'secret', 'timeout', 'backoff_max', 'queue_max']) {
      assert.ok(options.get(`hook.${o}`), `hook.${o}`);
      if (o !== 'enabled') assert.ok(options.get(`hook.${o}`)!.description, `hook.${o} has help`);
    }
    assert.ok((options.get('hook.secret') as any).password, 'the hook secret is a password field');
  },
);

test('x402 and the LAN pay page are on the Settings page, every option the loader reads', () => {
  const options = settingsOptions();
  for (const o of [
    'enabled',
    'pay_to',
    'facilitator_url',
    'network',
    'rpc_url',
    'timeout',
    'max_timeout_seconds',
    'token_name',
    'token_version',
  ]) {
    assert.ok(options.get(`x402.${o}`), `x402.${o}`);
    if (o !== 'enabled') assert.ok(options.get(`x402.${o}`)!.description, `x402.${o} has help`);
  }
  for (const o of ['listen', 'rate_limit']) assert.ok(options.get(`http.${o}`)?.description, `http.${o}`);
});

test("switching escrow on while a plan has no asset is refused before saving, with the loader's reason", async () => {
  const ASSET = `0x${'a'.repeat(40)}`;
  const data = new UciStub({ hour: { price_per_step: '1', asset: ASSET }, day: { price_per_step: '5' } });
  const options = settingsOptions(data);
  const setForm = (options as any).setForm as (v: Record<string, string>) => void;
  const map = (options as any).map;
  const file =
    `config pricing 'hour'\n\toption price_per_step 1\n\toption asset ${ASSET}\nconfig pricing 'day'\n\toption ` +
    `price_per_step 5\n` +
    `config escrow 'escrow'\n\toption enabled 1\n\toption facilitator_url http://f\n\toption ` +
    `address ${ASSET}\n\toption seller ${ASSET}\n`;
  let loader: string[] = [];
  try {
    configFromUci(parseUci(file));
  } catch (err) {
    loader = (err as ConfigError).problems.map((p) => `${p.path}: ${p.reason}`);
  }
  assert.equal(loader, [`pricing[day].asset: ${CROSS_RULES.find((r) => r.id === 'escrow-asset')!.reason}`]);

  setForm({ 'escrow.enabled': '1' });
  assert.is(options.get('escrow.enabled')!.validate!('escrow', '1'), loader[0], 'at the switch');
  const refused = await map.parse().then(
    () => null,
    (e: Error) => e.message,
  );
  assert.ok(refused?.endsWith(`\n${loader[0]}`), String(refused));
  assert.equal([...data.changes.keys()], [], 'nothing written');

  // Off, or with every plan priced in an asset, it saves; x402 `exact` offers only plans with an asset and needs
  // none.
  setForm({ 'escrow.enabled': '0', 'x402.enabled': '1' });
  assert.is(options.get('x402.enabled')!.validate!('x402', '1'), true);
  assert.is(await map.parse(), 'parsed');
  data.set('sluice', 'day', 'asset', ASSET);
  setForm({ 'escrow.enabled': '1' });
  assert.is(await map.parse(), 'parsed');
});

test('x402 upto, PC-sync, the RFC 8908 URLs and the new plan fields are on the Settings page, with help', () => {
  const options = settingsOptions();
  for (const o of ['enabled', 'facilitator_url', 'network', 'pay_to', 'max_timeout_seconds', 'timeout']) {
    assert.ok(options.get(`upto.${o}`), `upto.${o}`);
    if (o !== 'enabled') assert.ok(options.get(`upto.${o}`)!.description, `upto.${o} has help`);
  }
  for (const o of ['pcsync_secret', 'pcsync_window', 'portal_url', 'venue_url'])
    assert.ok(options.get(`http.${o}`)?.description, `http.${o}`);
  assert.ok((options.get('http.pcsync_secret') as any).password, 'the PC-sync secret is a password field');
  for (const o of ['display_name', 'devices', 'rate_down', 'rate_up'])
    assert.ok(options.get(`pricing.${o}`)?.description, `pricing.${o}`);
  assert.ok((options.get('upto.enabled') as any).section.description.includes('upto'));
});

/**
 * Whether an option's field is shown (LuCI validates and writes only those), from its depends() and the form values.
 */
const active = (o: any, form: Record<string, string>) =>
  o.deps.length === 0 ||
  o.deps.some((d: Record<string, string>) => Object.entries(d).every(([k, v]) => (form[k] ?? '') === v));

/**
 * The sweep of a section: LuCI would save (every shown field valid) exactly when the loader finds nothing wrong in it.
 */
function sweepSection(type: string, grid: Record<string, string[]>, plans: string) {
  const options = settingsOptions();
  const setForm = (options as any).setForm as (v: Record<string, string>) => void;
  const names = Object.keys(grid);
  let combos = 0,
    refused = 0;
  const walk = (i: number, form: Record<string, string>) => {
    if (i < names.length) {
      for (const v of grid[names[i]!]!) walk(i + 1, { ...form, [names[i]!]: v });
      return;
    }
    combos++;
    setForm(form);
    const luciBad = names.filter((n) => {
      const o = options.get(`${type}.${n}`) as any;
      if (!active(o, form)) return false;
      const v = form[n]!;
      if (typeof o.datatype === 'string' && v !== '' && !luciDatatypeAccepts(o.datatype, v)) return true;
      return o.validate ? o.validate(type, v) !== true : false;
    });
    const uci =
      `${plans}config ${type} '${type}'\n` +
      Object.entries(form)
        .filter(([, v]) => v !== '')
        .map(([k, v]) => `\toption ${k} '${v}'\n`)
        .join('');
    let loaderBad: string[] = [];
    try {
      configFromUci(parseUci(uci));
    } catch (err) {
      loaderBad = (err as ConfigError).problems.filter((p) => p.section === type).map((p) => p.option);
    }
    if (loaderBad.length) refused++;
    assert.equal(
      luciBad.sort(),
      [...new Set(loaderBad)].sort(),
      `${JSON.stringify(form)}: LuCI refuses ${luciBad}, the loader ${loaderBad}`,
    );
  };
  walk(0, {});
  return { combos, refused };
}

test(
  'batch settlement: every combination of policy, refund_idle, receiver, authorizer, delay and facilitator LuCI ' +
    'saves is one the loader runs, and none it refuses',
  () => {
    const options = settingsOptions();
    assert.equal(
      (options.get('batch_settlement.refund') as any).values,
      ['at-end', 'idle', 'on-request'],
      "the loader's three policies",
    );
    for (const policy of ['at-end', 'idle', 'on-request', 'later', 'AT-END']) {
      let ok = true;
      try {
        configFromUci(
          parseUci(
            `config pricing 'p'\n\toption price_per_step 1\nconfig batch_settlement 'batch_settlement'\n\toption ` +
              `enabled 1\n\toption facilitator_url http://f\n\toption receiver 0x${'b'.repeat(40)}\n\toption ` +
              `receiver_authorizer 0x${'c'.repeat(40)}\n\toption refund '${policy}'\n`,
          ),
        );
      } catch {
        ok = false;
      }
      assert.is(ok, (options.get('batch_settlement.refund') as any).values.includes(policy), policy);
    }
    const A = `0x${'b'.repeat(40)}`;
    const { combos, refused } = sweepSection(
      'batch_settlement',
      {
        enabled: ['0', '1'],
        refund: ['at-end', 'idle', 'on-request'],
        refund_idle: ['', '0', '600', '2592001', 'x'],
        receiver: ['', A, '0x1'],
        receiver_authorizer: ['', A],
        withdraw_delay: ['', '900', '899'],
        facilitator_url: ['', 'https://f.example', 'ftp://f'],
      },
      `config pricing 'p'\n\toption price_per_step 1\n`,
    );
    assert.ok(combos > 1000 && refused > 500, `${combos} combinations, ${refused} refused`);
  },
);

test('upto: every combination of its options LuCI saves is one the loader runs, and none it refuses', () => {
  const A = `0x${'b'.repeat(40)}`;
  const { combos, refused } = sweepSection(
    'upto',
    {
      enabled: ['0', '1'],
      facilitator_url: ['', 'https://f.example', 'http://f:6000'],
      network: ['', 'base', 'eip155:0'],
      pay_to: ['', A, '0x1'],
      max_timeout_seconds: ['', '900', '899', '2592001'],
      timeout: ['', '1', '121'],
    },
    `config pricing 'p'\n\toption price_per_step 1\n`,
  );
  assert.ok(combos > 300 && refused > 100, `${combos} combinations, ${refused} refused`);
});

test(
  'x402 upto on: the page names the plans upto cannot offer (no asset, a data plan without Valid for, a session ' +
    'past the window), as the daemon leaves them out of its 402',
  () => {
    const ASSET = `0x${'a'.repeat(40)}`;
    const plans = {
      hour: { price_per_step: '1', asset: ASSET, step_size: '1h', max_steps: '12' },
      week: { price_per_step: '1', asset: ASSET, step_size: '1d', max_steps: '7' },
      free: { price_per_step: '0' },
      gb: { metric: 'bytes', price_per_step: '1', asset: ASSET },
      daypass: { metric: 'bytes', price_per_step: '1', asset: ASSET, time_limit: '24h' },
    };
    const shown = (upto: Record<string, string>) => {
      const notices = (
        settingsOptions(new UciStub({ ...structuredClone(plans), upto: { '.type': 'upto', ...upto } } as any)) as any
      ).notices as unknown[][];
      return notices.map((n) => JSON.stringify(n));
    };
    const on = shown({ enabled: '1' });
    assert.is(on.length, 1, on.join('\n'));
    for (const t of [
      'week: a session can run past the authorization window (172800 s, less 600 s to settle)',
      'free: no asset',
      'gb: a data plan needs Valid for',
    ])
      assert.ok(on[0]!.includes(t), `${t} in ${on[0]}`);
    assert.not.ok(on[0]!.includes('hour:'), '12 h fits the default 2-day window');
    assert.not.ok(on[0]!.includes('daypass:'), 'a 24 h day pass fits the default 2-day window');
    // A day pass of exactly 24 h does not fit a 24 h window less the settle margin; a week's window takes both.
    const day = shown({ enabled: '1', max_timeout_seconds: '86400' })[0]!;
    assert.ok(day.includes('daypass: a session can run past the authorization window (86400 s'), day);
    const wide = shown({ enabled: '1', max_timeout_seconds: '700000' })[0]!;
    for (const t of ['week:', 'daypass:', 'hour:']) assert.not.ok(wide.includes(t), t);
    assert.ok(wide.includes('free: no asset') && wide.includes('gb: a data plan needs Valid for'));
    assert.equal(shown({ enabled: '0' }), [], 'off: nothing said');
  },
);

/**
 * rpcd's session.c, rpc_login_setup_acl_file + rpc_login_setup_acl_scope: the (scope, object, function) grants a
 * login gets from an ACL file, for the groups its `list read` / `list write` name (fnmatch patterns, `*` for all).
 */
function rpcdGrants(acl: Record<string, any>, login: { read: string[]; write: string[] }): Set<string> {
  const grants = new Set<string>();
  const matches = (patterns: string[], group: string) =>
    patterns.some((p) => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(group));
  for (const [group, perms] of Object.entries(acl)) {
    for (const perm of ['read', 'write'] as const) {
      if (!perms[perm] || !matches(login[perm], group)) continue;
      for (const [scope, objects] of Object.entries(perms[perm] as Record<string, unknown>)) {
        if (Array.isArray(objects)) for (const object of objects) grants.add(`${scope} ${object} ${perm}`);
        else
          for (const [object, fns] of Object.entries(objects as Record<string, string[]>))
            for (const fn of fns) grants.add(`${scope} ${object} ${fn}`);
      }
    }
  }
  return grants;
}

test(
  "ACL (rpcd's grant logic): a read-only login may read sluice but nothing of sluice_secrets; the write role " +
    'reads and writes both',
  () => {
    const acl = readJson('root/usr/share/rpcd/acl.d/luci-app-sluice.json');
    const staff = rpcdGrants(acl, { read: ['*'], write: [] });
    const admin = rpcdGrants(acl, { read: ['*'], write: ['*'] });
    assert.ok(staff.has('uci sluice read') && !staff.has('uci sluice write'));
    assert.equal(
      [...staff].filter((g) => g.includes('sluice_secrets')),
      [],
      'no grant of any kind on the secrets to a read-only login',
    );
    assert.ok(
      admin.has('uci sluice_secrets read') && admin.has('uci sluice_secrets write') && admin.has('uci sluice write'),
    );
    // No file-scope grant could hand the secrets file out either (rpcd's file plugin checks the path against these).
    for (const g of [...staff, ...admin])
      assert.not.ok(g.startsWith('file /etc/config') || g.startsWith('file /etc/*') || g.startsWith('file *'), g);
  },
);

/** The secret options settings.js offers, by `section.option`. */
const secretKeys = Object.entries(SECRET_OPTIONS).flatMap(([t, os]) => os.map((o) => `${t}.${o}`));

test('every secret is a write-only field of sluice_secrets, and no other field is', () => {
  const options = settingsOptions();
  for (const key of secretKeys) {
    const o = options.get(key) as any;
    assert.ok(o, key);
    assert.is(o.uciconfig, 'sluice_secrets', key);
    assert.ok(o.password, `${key} is a password field`);
  }
  for (const [key, o] of options)
    if ((o as any).uciconfig === 'sluice_secrets' && !key.split('.')[1]!.startsWith('_remove_'))
      assert.ok(secretKeys.includes(key), key);
  assert.equal((options as any).map.chained, ['sluice_secrets'], 'loaded and saved with sluice');
});

test('a stored secret is never shown; empty keeps it, a new value replaces it, Remove deletes it', () => {
  const uciData = new UciStub(
    { radius: { '.type': 'radius', enabled: '1', server: 'h' } },
    { radius: { '.type': 'radius', secret: 'the-stored-one' } },
  );
  const options = settingsOptions(uciData);
  const o = options.get('radius.secret') as any;
  assert.is(o.cfgvalue('radius'), '', 'the widget never gets the stored value');
  assert.match(o.renderWidget('radius'), /^Set \(not shown\)/);
  assert.is(o.validate('radius', ''), true, 'empty keeps the stored secret: not "Required"');
  o.remove('radius');
  assert.equal([...uciData.changes], [], 'an empty field deletes nothing');
  o.write('radius', 'a-new-one');
  assert.equal(
    [...uciData.changes],
    [['sluice_secrets.radius.secret', 'a-new-one']],
    'written to sluice_secrets, nothing to sluice',
  );
  (options.get('radius._remove_secret') as any).write('radius', '1');
  assert.equal(uciData.changes.get('sluice_secrets.radius.secret'), null);
  // Nothing stored: empty is "Required" as before, and a first value creates the section in sluice_secrets.
  const fresh = new UciStub({ hook: { '.type': 'hook', enabled: '1' } }, {});
  const hook = settingsOptions(fresh).get('hook.secret') as any;
  assert.match(hook.renderWidget('hook'), /^Not set$/);
  assert.is(hook.validate('hook', ''), 'At least 16 characters');
  hook.write('hook', 'k'.repeat(16));
  assert.equal(
    [...fresh.changes],
    [
      ['sluice_secrets.hook', 'hook'],
      ['sluice_secrets.hook.secret', 'k'.repeat(16)],
    ],
  );
});

test('a read-only user: the secrets file is not loaded, the fields say they are hidden and write nothing', () => {
  const uciData = new UciStub({ radius: { '.type': 'radius' } }, {});
  const options = settingsOptions(uciData, false);
  assert.equal((options as any).map.chained, []);
  for (const key of secretKeys) {
    const o = options.get(key) as any;
    assert.ok(o.readonly, key);
    assert.match(o.renderWidget(key.split('.')[0]), /^Hidden/);
    o.write(key.split('.')[0], 'x'.repeat(20));
  }
  assert.equal([...uciData.changes], []);
});

test.run();
