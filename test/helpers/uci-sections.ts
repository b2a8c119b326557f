/**
 * UCI sections the daemon labs of several tests and benches share (a priced time plan, x402, RADIUS, the LAN HTTP
 * endpoint), so a renamed option changes in one place.
 */

/** A time plan: 60 s per step at `price` of `asset`, up to 100 steps. */
export function timePlanSection(o: { asset: string; price: bigint | number; id?: string }): string {
  return `
config pricing '${o.id ?? 'wifi'}'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '${o.price}'
\toption asset '${o.asset}'
\toption max_steps '100'
`;
}

/**
 * A plan in the test chain's USDC (currency and 6 decimals shown): `stepSize` of `metric` per step at `price`, up to
 * `maxSteps` (defaults: 'wifi', 60 seconds, 100 steps).
 */
export function usdcPlanSection(o: {
  asset: string;
  price: bigint | number;
  id?: string;
  metric?: 'seconds' | 'bytes';
  stepSize?: number;
  maxSteps?: number;
}): string {
  return `
config pricing '${o.id ?? 'wifi'}'
\toption metric '${o.metric ?? 'seconds'}'
\toption step_size '${o.stepSize ?? 60}'
\toption price_per_step '${o.price}'
\toption asset '${o.asset}'
\toption currency 'USDC'
\toption decimals '6'
\toption max_steps '${o.maxSteps ?? 100}'
`;
}

/** x402 against a test facilitator on the local chain (Base Sepolia's id, USDC's EIP-712 name). */
export function x402Section(o: { facilitatorUrl: string; payTo: string; timeoutS?: number; rpcUrl?: string }): string {
  // rpc_url 'none' unless given: a test never reaches Base Sepolia's public endpoint, the network's default.
  return `
config x402 'x402'
\toption enabled '1'
\toption facilitator_url '${o.facilitatorUrl}'
\toption network 'eip155:84532'
\toption pay_to '${o.payTo}'
\toption token_name 'USDC'
\toption rpc_url '${o.rpcUrl ?? 'none'}'
${o.timeoutS === undefined ? '' : `\toption timeout '${o.timeoutS}'\n`}`;
}

/**
 * x402 `batch-settlement` on Base Sepolia's id with USDC's EIP-712 domain; the receiver and its authorizer default to
 * placeholder addresses (enough for a daemon that offers deposits nobody makes).
 */
export function batchSettlementSection(o: {
  facilitatorUrl: string;
  receiver?: string;
  receiverAuthorizer?: string;
  refund?: string;
  timeoutS?: number;
}): string {
  return `
config batch_settlement 'batch_settlement'
\toption enabled '1'
\toption facilitator_url '${o.facilitatorUrl}'
\toption network 'eip155:84532'
\toption receiver '${o.receiver ?? `0x${'22'.repeat(20)}`}'
\toption receiver_authorizer '${o.receiverAuthorizer ?? `0x${'33'.repeat(20)}`}'
\toption withdraw_delay '900'
${o.refund === undefined ? '' : `\toption refund '${o.refund}'\n`}\toption token_name 'USDC'
\toption token_version '2'
${o.timeoutS === undefined ? '' : `\toption timeout '${o.timeoutS}'\n`}`;
}

/** x402 `upto` on Base Sepolia's id paying `payTo`, authorizations valid up to a day. */
export function uptoSection(o: { facilitatorUrl: string; payTo: string; timeoutS?: number }): string {
  return `
config upto 'upto'
\toption enabled '1'
\toption facilitator_url '${o.facilitatorUrl}'
\toption network 'eip155:84532'
\toption pay_to '${o.payTo}'
\toption max_timeout_seconds '86400'
${o.timeoutS === undefined ? '' : `\toption timeout '${o.timeoutS}'\n`}`;
}

/** RADIUS against a test FreeRADIUS (short timeout, one retry: the tests' outages are deliberate). */
export function radiusSection(r: { authPort: number; acctPort: number; secret: string }): string {
  return `
config radius 'radius'
\toption enabled '1'
\toption server '127.0.0.1'
\toption auth_port '${r.authPort}'
\toption acct_port '${r.acctPort}'
\toption secret '${r.secret}'
\toption nas_identifier 'router-test'
\toption nas_ip '127.0.0.1'
\toption timeout '0.3'
\toption retries '1'
`;
}

/** The LAN HTTP endpoint on 127.0.0.1:`port`. */
export function httpSection(port: number, rateLimit?: number): string {
  return `
config http 'http'
\toption listen '127.0.0.1:${port}'
${rateLimit === undefined ? '' : `\toption rate_limit '${rateLimit}'\n`}`;
}
