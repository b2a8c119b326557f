/**
 * Amounts in their asset's own unit: the routers store and report the smallest unit (an integer as decimal text), and
 * each router's status `pricing` says, per plan, its `asset`, its `currency` (the name people read) and its
 * `decimals`. An asset is shown as `30.25 USDC` only when every router that prices it agrees on both; otherwise (no
 * router prices it, or two disagree) its amounts stay in the smallest unit and say so. Exact: bigint and text, never
 * a float on the way.
 */

export interface Unit {
  /** The name a person reads (the plans' currency), e.g. USDC, sat. */
  name: string;
  decimals: number;
}

/** asset → its unit, or null where the routers' pricing does not settle it. */
export type Units = ReadonlyMap<string, Unit | null>;

export interface PricedAsset {
  asset: string;
  currency: string | null;
  decimals: number | string | null;
}

const MAX_DECIMALS = 36;

/** Every router's plans' (asset, currency, decimals), agreed or not. */
export function unitsOf(plans: readonly PricedAsset[]): Units {
  const out = new Map<string, Unit | null>();
  for (const p of plans) {
    const decimals = Number(p.decimals);
    const valid =
      Number.isInteger(decimals) &&
      decimals >= 0 &&
      decimals <= MAX_DECIMALS &&
      typeof p.currency === 'string' &&
      /^[\p{L}\p{N} ._$€£¥-]{1,16}$/u.test(p.currency);
    const unit = valid ? { name: p.currency!, decimals } : null;
    if (!out.has(p.asset)) out.set(p.asset, unit);
    else {
      const seen = out.get(p.asset);
      if (seen == null || unit === null || seen.name !== unit.name || seen.decimals !== unit.decimals)
        out.set(p.asset, null);
    }
  }
  return out;
}

/** 30250000 at 6 decimals → "30.25"; grouped in thousands ("1,234,567.5"). */
export function decimalText(smallest: string, decimals: number): string {
  const digits = /^\d+$/.test(smallest) ? smallest.replace(/^0+(?=\d)/, '') : '0';
  const padded = digits.padStart(decimals + 1, '0');
  const whole = padded.slice(0, padded.length - decimals).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const fraction = decimals > 0 ? padded.slice(padded.length - decimals).replace(/0+$/, '') : '';
  return fraction === '' ? whole : `${whole}.${fraction}`;
}

/** What an asset is called on a page: its unit's name, or the asset as the routers sent it. */
export const assetName = (asset: string, units: Units): string => units.get(asset)?.name ?? (asset || '(no asset)');

/** "30.25 USDC", or "30250000 0x83… (smallest unit)" where the decimals are not known. */
export function money(smallest: string, asset: string, units: Units): string {
  const unit = units.get(asset);
  if (unit == null) return `${decimalText(smallest, 0)} ${asset || '(no asset)'} (smallest unit)`;
  return `${decimalText(smallest, unit.decimals)} ${unit.name}`;
}
