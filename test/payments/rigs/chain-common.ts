/**
 * What the chain methods' rigs of the PaymentMethod suite share (method-suite.ts): a bytes plan in the test chain's
 * USDC (a ceiling is used up with traffic, no waiting on a clock), fresh funded buyers, and the rig's end.
 */
import type { PrivateKeyAccount } from 'viem/accounts';
import type { TestChain, TestToken } from '../../chain/index.ts';
import { usdcPlanSection } from '../../helpers/uci-sections.ts';

export const MiB = 1_048_576n;
export const STEP_PRICE = 10_000n; // 0.01 USDC per MiB
export const STEPS = 4n;
export const PRICE = STEPS * STEP_PRICE;
export const FUNDS = 5_000_000n;
export const PLAN = { id: 'wifi', steps: STEPS, allotment: STEPS * MiB };

export function bytesPlan(usdc: TestToken): string {
  return usdcPlanSection({
    asset: usdc.address,
    price: STEP_PRICE,
    metric: 'bytes',
    stepSize: Number(MiB),
    maxSteps: 100,
  });
}

/** A buyer holding `funds` of the token (and ETH for gas, which some schemes' wallets spend). */
export async function newBuyer(chain: TestChain, usdc: TestToken, funds = FUNDS): Promise<PrivateKeyAccount> {
  const buyer = chain.newAccount();
  await usdc.mint(buyer.address, funds);
  return buyer;
}

/** The chain rigs' daemon: chain/daemon-rig.ts's (DaemonLab runs SLUICE_TEST_BUNDLE when it is set). */
export { startChainDaemon as startMethodDaemon } from '../../chain/daemon-rig.ts';
