/**
 * The lab Cashu mint (test/peers/cashu-mint.ts) as a process of its own, for the e2e lab: tollgate.test.ts starts it
 * inside the router's network namespace (`ip netns exec <rt>`), where sluice runs, so the daemon reaches it on the
 * router's loopback. It funds `count` tokens of `amount` sat (through a cashu-ts wallet, as a customer's wallet gets
 * them), prints one JSON line `{ url, tokens }` and serves until its stdin closes.
 *
 *   node --import tsx test/e2e/tollgate-mint.ts <amount> <count>
 */
import { startCashuMint } from '../peers/cashu-mint.ts';

const [amount, count] = process.argv.slice(2).map(Number);
if (!Number.isSafeInteger(amount) || !Number.isSafeInteger(count))
  throw new Error('usage: tollgate-mint.ts <amount> <count>');
const mint = await startCashuMint();
const tokens: string[] = [];
for (let i = 0; i < count!; i++) tokens.push(await mint.fundToken(amount!));
process.stdout.write(`${JSON.stringify({ url: mint.url, tokens })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void mint.stop().finally(() => process.exit(0));
});
