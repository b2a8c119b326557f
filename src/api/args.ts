/**
 * Argument policies for the `sluice` ubus methods, declared as data (like rpcd's blobmsg_policy tables) and checked
 * once, before any handler runs. ubus carries no types a caller must respect (the `ubus` CLI turns `"1"` into a string
 * and `1` into an INT32), so each spec says what it accepts and normalises it: MACs to lowercase colon form, amounts
 * to bigint from a decimal string or a non-negative integer. A policy declared `as const` also gives its handler's
 * argument type (ArgsOf): the checked value of each kind, a literal union for `oneOf`, optional unless `required`.
 */
import { SluiceError } from '../errors.ts';
import { type BlobmsgTable, BlobmsgType, type BlobmsgValue } from '../ubus/index.ts';
import { normalizeMac } from '../mac.ts';
import { MAX_UNITS, parseUnits } from '../merchant/index.ts';

export type ArgKind = 'mac' | 'string' | 'amount' | 'count' | 'table' | 'boolean';

export interface ArgSpec {
  kind: ArgKind;
  required?: boolean;
  /** For `string`: allowed values. */
  oneOf?: readonly string[];
  /** For `string`: maximum length in characters. */
  maxLength?: number;
}

export type ArgSpecs = Readonly<Record<string, ArgSpec>>;

/** What checkArgs makes of each kind: MACs normalised, amounts and counts as bigint. */
interface CheckedKind {
  mac: string;
  string: string;
  amount: bigint;
  count: bigint;
  table: BlobmsgTable;
  boolean: boolean;
}

/** The checked value of one spec: a `oneOf` string narrows to its listed values. */
export type ArgValue<S extends ArgSpec> = S extends { kind: 'string'; oneOf: readonly (infer V extends string)[] }
  ? V
  : CheckedKind[S['kind']];

type RequiredNames<S extends ArgSpecs> = { [K in keyof S]: S[K] extends { required: true } ? K : never }[keyof S];

/** The arguments a handler receives for policy `S`: required ones always present, the others absent when not given. */
export type ArgsOf<S extends ArgSpecs> = { -readonly [K in RequiredNames<S>]: ArgValue<S[K]> } & {
  -readonly [K in Exclude<keyof S, RequiredNames<S>>]?: ArgValue<S[K]>;
};

/** The blobmsg type announced in the object's signature for each kind (informational: ubusd does not enforce it). */
const SIGNATURE_TYPE: Record<ArgKind, number> = {
  mac: BlobmsgType.STRING,
  string: BlobmsgType.STRING,
  amount: BlobmsgType.STRING,
  count: BlobmsgType.INT64,
  table: BlobmsgType.TABLE,
  boolean: BlobmsgType.BOOL,
};

export function signatureOf(specs: ArgSpecs): Record<string, number> {
  return Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, SIGNATURE_TYPE[spec.kind]]));
}

export class InvalidArgumentError extends SluiceError {
  constructor(argument: string, reason: string) {
    super('ERR_INVALID_ARGUMENT', `${argument}: ${reason}`, { details: { argument } });
    this.name = 'InvalidArgumentError';
  }
}

/** Counts (seconds, bytes) must stay exact as JS numbers where they become timers and counters. */
const COUNT_LIMIT = BigInt(Number.MAX_SAFE_INTEGER);

function describe(value: BlobmsgValue): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'a table';
  return `${typeof value} ${JSON.stringify(typeof value === 'bigint' ? value.toString() : value)}`;
}

/**
 * The merchant's one amount rule (digits, bigint or safe integer; no sign, point or exponent), reported per argument.
 */
function toBigint(name: string, value: BlobmsgValue, limit: bigint): bigint {
  let n: bigint;
  try {
    n = parseUnits(value, name);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new InvalidArgumentError(name, message.startsWith(`${name}: `) ? message.slice(name.length + 2) : message);
  }
  if (n > limit) throw new InvalidArgumentError(name, `is too large (limit ${limit}), got ${n}`);
  return n;
}

export type CheckedArgs = Record<string, CheckedKind[ArgKind]>;

/** Validates `args` against `specs`; unknown arguments (e.g. uhttpd's `ubus_rpc_session`) are ignored. */
export function checkArgs<const S extends ArgSpecs>(specs: S, args: BlobmsgTable): ArgsOf<S> {
  const out: CheckedArgs = {};
  for (const [name, spec] of Object.entries(specs)) {
    const value = args[name];
    if (value === undefined || value === null || value === '') {
      if (spec.required) throw new InvalidArgumentError(name, 'is required');
      continue;
    }
    switch (spec.kind) {
      case 'mac':
        if (typeof value !== 'string')
          throw new InvalidArgumentError(name, `must be a MAC address string, got ${describe(value)}`);
        try {
          out[name] = normalizeMac(value);
        } catch {
          throw new InvalidArgumentError(name, `is not a MAC address: ${JSON.stringify(value)}`);
        }
        break;
      case 'string':
        if (typeof value !== 'string') throw new InvalidArgumentError(name, `must be a string, got ${describe(value)}`);
        if (spec.maxLength !== undefined && value.length > spec.maxLength)
          throw new InvalidArgumentError(name, `is longer than ${spec.maxLength} characters`);
        if (spec.oneOf && !spec.oneOf.includes(value))
          throw new InvalidArgumentError(name, `must be one of ${spec.oneOf.join(', ')}, got ${JSON.stringify(value)}`);
        out[name] = value;
        break;
      case 'amount':
        out[name] = toBigint(name, value, MAX_UNITS);
        break;
      case 'count':
        out[name] = toBigint(name, value, COUNT_LIMIT);
        break;
      case 'boolean':
        if (typeof value !== 'boolean')
          throw new InvalidArgumentError(name, `must be a boolean, got ${describe(value)}`);
        out[name] = value;
        break;
      case 'table':
        if (typeof value !== 'object' || Array.isArray(value) || typeof value === 'bigint')
          throw new InvalidArgumentError(name, `must be a table, got ${describe(value)}`);
        out[name] = value;
        break;
    }
  }
  // The one place the policy's types meet the checked values: each case above produced CheckedKind[spec.kind], a
  // `oneOf` string was one of its values, and a required argument was present.
  return out as ArgsOf<S>;
}
