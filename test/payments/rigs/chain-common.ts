/**
 * What the chain methods' rigs of the PaymentMethod suite share (method-suite.ts): a bytes plan in the test chain's
 * USDC (a ceiling is used up with traffic, no waiting on a clock), fresh funded buyers, and the rig's end.
 */
import type { PrivateKeyAccount } from 'viem/accounts';
import { startChainFacilitator, type ChainDaemon, type ChainDaemonOptions } from '../../chain/daemon-rig.ts';
import type { TestChain, TestToken } from '../../chain/index.ts';
import { DaemonLab } from '../../daemon/harness.ts';
import { freePort } from '../../helpers/net.ts';
import { httpSection, usdcPlanSection } from '../../helpers/uci-sections.ts';

export const MiB = 1_048_576n;
export const STEP_PRICE = 10_000n; // 0.01 USDC per MiB
export const STEPS = 4n;
export const PRICE = STEPS * STEP_PRICE;
export const FUNDS = 5_000_000n;
export const PLAN = { id: 'wifi', steps: STEPS, allotment: STEPS * MiB };

export function bytesPlan(usdc: TestToken): string {
  return usdcPlanSection({ asset: usdc.address, price: STEP_PRICE, metric: 'bytes', stepSize: Number(MiB), maxSteps: 100 });
}

/** A buyer holding `funds` of the token (and ETH for gas, which some schemes' wallets spend). */
export async function newBuyer(chain: TestChain, usdc: TestToken, funds = FUNDS): Promise<PrivateKeyAccount> {
  const buyer = chain.newAccount();
  await usdc.mint(buyer.address, funds);
  return buyer;
}

/**
 * chain/daemon-rig.ts's startChainDaemon, running the bundle SLUICE_TEST_BUNDLE names when set (a bundle built from a
 * commit, while the shared tree's dist/ follows everyone's edits), else dist/sluice.mjs.
 */
export async function startMethodDaemon<D = undefined>(o: ChainDaemonOptions<D>): Promise<ChainDaemon<D>> {
  const parts = await startChainFacilitator(o);
  let lab: DaemonLab | undefined;
  const close = async (): Promise<void> => {
    await lab?.close();
    await parts.close();
  };
  try {
    const port = await freePort();
    const config = await o.config(parts);
    lab = await DaemonLab.create({
      pollInterval: 0.3, portalSocket: true, extraConfig: config + httpSection(port, o.rateLimit),
      ...(process.env.SLUICE_TEST_BUNDLE && { bundle: process.env.SLUICE_TEST_BUNDLE }),
    });
    await lab.startDaemon();
    const { chain, usdc, deployed, facilitator, proxy } = parts;
    return { chain, usdc, deployed, facilitator, proxy, lab, port, base: `http://127.0.0.1:${port}`, close };
  } catch (err) {
    await close().catch(() => {});
    throw err;
  }
}
