/**
 * Cross-field rules (a value that is fine alone but not with another one): one JSON table shipped in the LuCI app
 * (luci-app/htdocs/luci-static/resources/sluice/rules.json), so LuCI's Settings page refuses exactly what this loader
 * refuses. Single-option checks stay in the section readers. Pure.
 */
import table from '../../luci-app/htdocs/luci-static/resources/sluice/rules.json' with { type: 'json' };

export type CrossRule =
  | { id: string; section: string; option: string; kind: 'at_least'; other: string; reason: string }
  | {
      id: string;
      section: string;
      option: string;
      kind: 'product_at_most';
      factors: string[];
      limit: string;
      reason: string;
    }
  | { id: string; section: string; option: string; kind: 'required_while'; while: string; reason: string };

export const CROSS_RULES: readonly CrossRule[] = table.rules as CrossRule[];

/**
 * Parsed values of one section (numbers as bigint, text as string); `context` holds other sections' flags
 * (`escrow.enabled`).
 */
export interface RuleInput {
  values: Readonly<Record<string, bigint | string | undefined>>;
  context: Readonly<Record<string, boolean>>;
  /** Options whose own value was bad: rules over them are not evaluated (one problem per cause). */
  invalid?: ReadonlySet<string>;
}

export interface RuleViolation {
  rule: string;
  option: string;
  reason: string;
}

/** The rules of `section` that `input` breaks, in table order. */
export function crossRuleViolations(section: string, input: RuleInput): RuleViolation[] {
  const out: RuleViolation[] = [];
  const { values, context, invalid = new Set<string>() } = input;
  const num = (name: string): bigint | undefined =>
    typeof values[name] === 'bigint' ? (values[name] as bigint) : undefined;
  for (const rule of CROSS_RULES) {
    if (rule.section !== section) continue;
    const uses =
      rule.kind === 'at_least'
        ? [rule.option, rule.other]
        : rule.kind === 'product_at_most'
          ? rule.factors
          : [rule.option];
    if (uses.some((o) => invalid.has(o))) continue;
    let reason: string | undefined;
    if (rule.kind === 'at_least') {
      const a = num(rule.option),
        b = num(rule.other);
      if (a !== undefined && b !== undefined && a < b) reason = rule.reason.replace('%s', String(b));
    } else if (rule.kind === 'product_at_most') {
      const factors = rule.factors.map(num);
      if (factors.every((f) => f !== undefined)) {
        const product = factors.reduce((p, f) => p! * f!, 1n)!;
        if (product > BigInt(rule.limit)) reason = rule.reason.replace('%s', String(values.metric ?? ''));
      }
    } else if (context[rule.while] === true && (values[rule.option] ?? '') === '') {
      reason = rule.reason;
    }
    if (reason !== undefined) out.push({ rule: rule.id, option: rule.option, reason });
  }
  return out;
}
