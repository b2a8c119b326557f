/**
 * The PaymentMethod suite's rig for the escrow session (payment method `x402-session`): SessionEscrow on anvil
 * (test/escrow/SessionEscrow.sol), the reference escrow facilitator (test/escrow/facilitator.ts), the daemon with
 * escrow on. A payment is a deposit: a ReceiveWithAuthorization to the escrow whose nonce is the session terms' hash,
 * its reference the escrow session id. The end closes the session: the seller gets what the buyer's receipts signed
 * (none here), the rest goes back. A kill -9 is placed where /session/create acted on chain and never answered.
 */
import type { Address } from 'viem';
import type { PrivateKeyAccount } from 'viem/accounts';
import { randomNonce, signAuthorization, type Artifact, type TestChain } from '../../chain/index.ts';
import { compileEscrow, startEscrowFacilitator, type EscrowFacilitator } from '../../escrow/facilitator.ts';
import { sessionIdOf, termsNonce } from '../../../src/escrow/receipt.ts';
import type { MethodRig, RigPayment } from '../method-suite.ts';
import { bytesPlan, newBuyer, PLAN, STEP_PRICE, STEPS, startMethodDaemon } from './chain-common.ts';
import { stateRecord } from './state-file.ts';

const NET = 'eip155:84532';

interface EscrowParts {
  escrow: Address;
  seller: PrivateKeyAccount;
  operator: PrivateKeyAccount;
  artifact: Artifact;
}

async function deployEscrow(chain: TestChain): Promise<EscrowParts> {
  const artifact = compileEscrow();
  const escrow = await chain.deploy(artifact, [3600n]);
  const seller = chain.newAccount();
  const operator = chain.newAccount();
  await chain.fund(seller.address);
  await chain.fund(operator.address);
  const h = await chain.wallet(seller).writeContract({
    address: escrow,
    abi: artifact.abi,
    functionName: 'setOperator',
    args: [operator.address, true] as never,
  });
  await chain.publicClient.waitForTransactionReceipt({ hash: h });
  return { escrow, seller, operator, artifact };
}

export async function escrowSessionRig(): Promise<MethodRig> {
  // Started with the config (it needs the token the rig deploys first); stopped after the daemon.
  let fac: EscrowFacilitator | undefined;
  const rig = await startMethodDaemon<EscrowParts>({
    deploy: deployEscrow,
    config: async ({ chain, usdc, deployed: d }) => {
      fac = await startEscrowFacilitator(chain, {
        escrow: d.escrow,
        artifact: d.artifact,
        operator: d.operator,
        token: usdc.address,
      });
      return (
        bytesPlan(usdc) +
        `
config escrow 'escrow'
\toption enabled '1'
\toption facilitator_url '${fac.url}'
\toption network '${NET}'
\toption address '${d.escrow}'
\toption seller '${d.seller.address}'
\toption credit_steps '1'
\toption close_grace '0'
`
      );
    },
  }).catch(async (err: unknown) => {
    await fac?.stop();
    throw err;
  });
  const { chain, usdc, lab } = rig;
  const { escrow, seller } = rig.deployed;
  const facilitator = fac!;

  async function deposit(o: { seller?: Address } = {}): Promise<RigPayment> {
    const buyer = await newBuyer(chain, usdc);
    const terms = {
      seller: o.seller ?? seller.address,
      pricePerUnit: STEP_PRICE,
      maxUnits: STEPS,
      duration: 3600n,
      salt: randomNonce(),
    };
    const value = STEP_PRICE * STEPS;
    const nonce = termsNonce(escrow, terms);
    const { authorization, signature } = await signAuthorization(buyer, usdc, {
      to: escrow,
      value,
      nonce,
      primaryType: 'ReceiveWithAuthorization',
    });
    const payload = {
      x402Version: 2,
      accepted: {
        scheme: 'exact',
        network: NET,
        amount: value.toString(),
        asset: usdc.address,
        payTo: escrow,
        maxTimeoutSeconds: 300,
        extra: { name: 'USDC', version: '2' },
      },
      payload: { signature, authorization },
      extensions: {
        session: {
          type: 'prepaid',
          pricePerUnit: String(STEP_PRICE),
          maxUnits: String(STEPS),
          duration: String(terms.duration),
          seller: terms.seller,
          salt: terms.salt,
        },
      },
    };
    return {
      fields: { method: 'x402-session', payload },
      reference: sessionIdOf(usdc.address, buyer.address, nonce),
      buyer: buyer.address,
    };
  }

  return {
    lab,
    rules: { ceiling: true, refund: true, pending: true },
    replayCodes: ['ERR_PAYMENT_REPLAYED'],
    pendingCodes: ['ERR_ESCROW_CREATE_PENDING', 'ERR_PAYMENT_IN_PROGRESS'],
    plan: { id: PLAN.id, allotment: PLAN.allotment },
    payment: () => deposit(),
    // Terms naming another seller: not this router's (ERR_ESCROW_TERMS_MISMATCH), refused before /session/create.
    badPayment: () => deposit({ seller: chain.newAccount().address }),
    money: async (p) => [
      await usdc.balanceOf(p.buyer as Address),
      await usdc.balanceOf(seller.address),
      await usdc.balanceOf(escrow),
    ],
    settledAfterEnd: (p) =>
      lab.waitFor(
        () => Boolean(stateRecord(lab, 'escrow.json', 'sessionId', p.reference!)?.closed),
        90_000,
        `the escrow session ${p.reference} closed`,
      ),
    holdAuthorize: async (p) => {
      facilitator.faults.hangCreateReply = 1;
      const before = await usdc.balanceOf(p.buyer as Address);
      // /session/create acted (the deposit is in the escrow) and its answer never comes.
      await lab.waitFor(async () => (await usdc.balanceOf(p.buyer as Address)) < before, 60_000, 'the deposit landed');
    },
    close: async () => {
      await rig.close();
      await facilitator.stop();
    },
  };
}
