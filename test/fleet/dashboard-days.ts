/** What the dashboard's day-and-year tests share: a day in ms, a page holding every row, the methods they pay with. */
export const DAY = 86_400_000;

/** One page of every row (the tests compare whole tables). */
export const ALL = { page: 1, size: 1_000_000, offset: 0 };

/** The payment methods and assets of the tests' sales, one a router in turn. */
export const METHODS = [
  ['x402', 'USDC'],
  ['cashu', 'sat'],
  ['voucher', 'EUR'],
] as const;
