/**
 * Parsing amounts and step counts. One rule: integers in the smallest unit, as digits ("1500000" is 1.5 USDC at 6
 * decimals), a bigint, or a safe integer number. No decimal point, no sign, no exponent: a portal that means 1.5 USDC
 * converts with the plan's `decimals` (see formatUnits for the way back), so no amount is ever rounded here.
 */
import { SluiceError } from '../errors.ts';

/** Anything larger is refused: far past any real price, and it bounds the bigint work an input can cause. */
export const MAX_UNITS = 1n << 128n;

function invalid(what: string, message: string): SluiceError {
  return new SluiceError('ERR_INVALID_AMOUNT', `${what}: ${message}`);
}

export function parseUnits(input: unknown, what = 'amount'): bigint {
  let value: bigint;
  if (typeof input === 'bigint') value = input;
  else if (typeof input === 'number') {
    if (!Number.isSafeInteger(input))
      throw invalid(what, 'must be a whole number (a safe integer, or digits in a string)');
    value = BigInt(input);
  } else if (typeof input === 'string') {
    const text = input.trim();
    if (text === '') throw invalid(what, 'is empty');
    if (/^[0-9]+\.[0-9]*$|^\.[0-9]+$/.test(text))
      throw invalid(what, 'must be a whole number of the smallest unit (no decimal point)');
    if (!/^[0-9]+$/.test(text)) throw invalid(what, `not a number: ${JSON.stringify(text.slice(0, 40))}`);
    const digits = text.replace(/^0+(?=.)/, '');
    if (digits.length > 40) throw invalid(what, 'too large');
    value = BigInt(digits);
  } else {
    throw invalid(what, 'must be digits in a string, a bigint or an integer');
  }
  if (value < 0n) throw invalid(what, 'must not be negative');
  if (value > MAX_UNITS) throw invalid(what, 'too large');
  return value;
}

/** 1500000n at 6 decimals → "1.5"; for display and for humans, never parsed back here. */
export function formatUnits(value: bigint, decimals: number): string {
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(decimals + 1, '0');
  const whole = digits.slice(0, digits.length - decimals);
  const fraction = decimals > 0 ? digits.slice(digits.length - decimals).replace(/0+$/, '') : '';
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}
