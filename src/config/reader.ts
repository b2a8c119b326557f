/**
 * Reads typed values out of one UCI section, collecting every problem instead of stopping at the first.
 * A missing or empty option yields the default (UCI deletes an option set to ''). Pure.
 */
import type { UciSection } from './uci.ts';
import type { Parsed } from './values.ts';

/** What the daemon did about a problem when it runs on the valid part of a file. */
export type ProblemEffect = 'default-used' | 'plan-left-out' | 'section-disabled' | 'no-plan' | 'ignored';

export interface ConfigProblem {
  /** `section.option` as printed, e.g. `main.poll_interval` or `pricing[data].step_size`. */
  path: string;
  /** The UCI section's name (plan id for pricing) or its canonical name when the section is absent. */
  section: string;
  option: string;
  reason: string;
  /** The offending text; omitted for secrets. */
  value?: string;
  /** Set by configFromUciPartial: the default was used, the plan left out, the section disabled or ignored. */
  effect?: ProblemEffect;
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.path}: ${p.reason}${p.value === undefined ? '' : `, got ${JSON.stringify(p.value)}`}`;
}

export class SectionReader {
  constructor(
    private readonly section: UciSection | undefined,
    /** How problems name the section: `main`, `radius`, `pricing[data]`. */
    readonly label: string,
    private readonly problems: ConfigProblem[],
    private readonly secrets: ReadonlySet<string> = new Set(),
  ) {}

  report(option: string, reason: string, value?: string): void {
    const problem: ConfigProblem = {
      path: `${this.label}.${option}`,
      section: this.section?.name ?? this.label,
      option,
      reason,
    };
    if (value !== undefined && !this.secrets.has(option)) problem.value = value;
    this.problems.push(problem);
  }

  /** The raw value: a string, a list, or undefined when absent. */
  raw(option: string): string | string[] | undefined {
    return this.section?.options.get(option);
  }

  /** A single value; a list is a problem (reported once) and yields undefined. */
  text(option: string): string | undefined {
    const v = this.raw(option);
    if (Array.isArray(v)) {
      this.report(option, 'must be a single value (option), not a list');
      return undefined;
    }
    return v;
  }

  string(option: string, fallback: string, check?: (v: string) => string | undefined): string {
    const v = this.text(option);
    if (v === undefined) return fallback;
    const reason = check?.(v);
    if (reason !== undefined) {
      this.report(option, reason, v);
      return fallback;
    }
    return v;
  }

  parsed<T>(option: string, fallback: T, parse: (v: string) => Parsed<T>): T {
    const v = this.text(option);
    if (v === undefined) return fallback;
    const r = parse(v);
    if (r.ok) return r.value;
    this.report(option, r.reason, v);
    return fallback;
  }

  /** Like parsed, but absence is a problem too. */
  required<T>(option: string, fallback: T, parse: (v: string) => Parsed<T>, what = 'is required'): T {
    if (this.raw(option) === undefined) {
      this.report(option, what);
      return fallback;
    }
    return this.parsed(option, fallback, parse);
  }

  oneOf<T extends string>(option: string, allowed: readonly T[], fallback: T): T {
    return this.parsed(option, fallback, (v) =>
      (allowed as readonly string[]).includes(v)
        ? { ok: true, value: v as T }
        : { ok: false, reason: `must be one of ${allowed.join(', ')}` },
    );
  }
}
