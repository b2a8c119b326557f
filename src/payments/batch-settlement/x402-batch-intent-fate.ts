/**
 * What becomes of a `batch-settlement` purchase intent (x402-batch-intent.ts) that stands on a channel: another
 * device's purchase is refused while it stands, a landed one its device did not come back for goes on the channel's
 * record, and a restart asks the facilitator about every intent a crash left. The method (x402-batch.ts) holds one.
 */
import type { BatchSettlementConfig } from '../../config/index.ts';
import type { Log } from '../../log.ts';
import type { Clock } from '../../time.ts';
import { parseBatchPayment, type BatchFacilitatorClient } from '../../x402/index.ts';
import type { BatchChannelStore, ChannelRecord, PurchaseIntent } from './batch-channels.ts';
import { INTENT_LANDED_KEEP_MS, intentExpired, pendingElsewhere } from './x402-batch-intent.ts';

/** What the fate of an intent needs of the method: its facilitator, settings and requirements, its channel locks. */
export interface IntentMethod {
  readonly facilitator: BatchFacilitatorClient;
  readonly settings: BatchSettlementConfig;
  requirements(asset: string, price: bigint, accepted?: Record<string, unknown>): Record<string, unknown>;
  lockChannel(channelId: string): boolean;
  unlockChannel(channelId: string): void;
}

export class IntentFate {
  constructor(
    private readonly method: IntentMethod,
    private readonly store: BatchChannelStore,
    private readonly clock: Clock,
    private readonly log?: Log,
  ) {}

  /**
   * Another device's purchase intent stands on the channel: refused (ERR_BATCH_CHANNEL_BUSY), whatever the payload —
   * the customer's captured header above all. Only once the intent's deposit can no longer land is it asked about
   * (and dropped when its money never came).
   */
  async refuseIfIntendedElsewhere(channelId: string, mac: string): Promise<void> {
    const intent = this.store.intent(channelId);
    if (!intent || intent.mac === mac) return;
    if (intent.landedAt !== undefined) {
      if (this.clock.now() - intent.landedAt > INTENT_LANDED_KEEP_MS && (await this.recordLandedIntent(intent))) return;
    } else if (intentExpired(intent, this.clock.now()) && (await this.resolveIntent(intent)) === 'dropped') {
      return;
    }
    throw pendingElsewhere(intent);
  }

  /**
   * A landed intent its device did not come back for (INTENT_LANDED_KEEP_MS): its voucher goes on the channel's
   * record as the latest signed — no session, nothing charged, the channel idle (the refund policy applies to the
   * deposit) — so the channel is free for the customer's other devices, and the payload is a replay below the floor
   * for everyone. Money gone from the channel since (a withdrawal): the intent is dropped (the deposit cannot land
   * twice). True when the intent is gone.
   */
  private async recordLandedIntent(intent: PurchaseIntent): Promise<boolean> {
    const id = intent.channelId;
    const store = this.store;
    if (!this.method.lockChannel(id)) return false;
    try {
      const current = store.intent(id);
      if (!current) return true;
      if (current.payload !== intent.payload || current.mac !== intent.mac) return false;
      const v = await this.method.facilitator.verify({
        paymentPayload: current.voucherPayload,
        paymentRequirements: this.method.requirements(
          current.asset,
          current.price,
          current.voucherPayload.accepted as Record<string, unknown>,
        ),
      });
      const known = store.get(id);
      if (!v.ok || (known && known.signedMax >= current.ceiling)) {
        await store.dropIntent(id);
        return true;
      }
      const now = this.clock.now();
      const s = v.snapshot;
      const mirrored = {
        balance: s.balance,
        totalClaimed: s.totalClaimed,
        withdrawRequestedAt: s.withdrawRequestedAt,
        refundNonce: s.refundNonce,
        syncedAt: now,
      };
      const record: ChannelRecord = known
        ? {
            ...known,
            ...mirrored,
            signedMax: current.ceiling,
            signature: current.signature,
            purchases: known.purchases + 1,
            ...(!known.open && { idleSince: now }),
          }
        : {
            channelId: id,
            network: this.method.settings.network,
            chainId: this.method.settings.chainId,
            config: { ...parseBatchPayment(current.voucherPayload).config },
            charged: s.totalClaimed,
            signedMax: current.ceiling,
            signature: current.signature,
            ...mirrored,
            lastRequestAt: current.at,
            idleSince: now,
            purchases: 1,
          };
      await store.put(record, { resolvesIntent: true });
      this.log?.info('batch-settlement landed purchase intent recorded without a session', {
        channel: id,
        mac: current.mac,
        ceiling: current.ceiling.toString(),
      });
      return true;
    } finally {
      this.method.unlockChannel(id);
    }
  }

  /**
   * Whether an intent's money is in the channel, asked as the lost-answer path asks (the voucher alone through
   * /verify). Landed: marked so on flash, its device's resend gets the session. Not landed and its deposit can no
   * longer land: dropped. Otherwise it stands (the deposit may still land: a stranger's resend must not be the one
   * that makes it land and takes the session).
   */
  async resolveIntent(intent: PurchaseIntent): Promise<'landed' | 'dropped' | 'pending'> {
    const store = this.store;
    const recorded = store.get(intent.channelId);
    if (recorded && recorded.signedMax >= intent.ceiling) {
      // Its voucher (or a later one) is on record: the record binds it now.
      await store.dropIntent(intent.channelId);
      return 'dropped';
    }
    const v = await this.method.facilitator.verify({
      paymentPayload: intent.voucherPayload,
      paymentRequirements: this.method.requirements(
        intent.asset,
        intent.price,
        intent.voucherPayload.accepted as Record<string, unknown>,
      ),
    });
    const current = store.intent(intent.channelId);
    // The device's own purchase went on meanwhile: its write is the news.
    if (current?.payload !== intent.payload || current.mac !== intent.mac) return 'pending';
    if (v.ok) {
      if (current.landedAt === undefined) await store.putIntent({ ...current, landedAt: this.clock.now() });
      return 'landed';
    }
    if (intentExpired(current, this.clock.now())) {
      await store.dropIntent(intent.channelId);
      return 'dropped';
    }
    return 'pending';
  }

  /**
   * At start: every purchase intent a crash left (between its intent and its grant) is asked about once: the money
   * landed (the device that sent it gets its session when it sends the payload again; every other device is refused),
   * or not (it stands while the deposit may still land, and goes once it cannot). A facilitator that does not answer
   * leaves it standing: it binds the channel to its device either way.
   */
  async reconcileIntents(): Promise<void> {
    for (const intent of this.store.intents()) {
      try {
        if (intent.landedAt !== undefined) {
          if (this.clock.now() - intent.landedAt > INTENT_LANDED_KEEP_MS) await this.recordLandedIntent(intent);
          continue;
        }
        const fate = await this.resolveIntent(intent);
        this.log?.info('batch-settlement purchase intent after a restart', {
          channel: intent.channelId,
          mac: intent.mac,
          ceiling: intent.ceiling.toString(),
          fate,
        });
      } catch (err) {
        this.log?.warn('batch-settlement purchase intent not resolved; it stands for its device', {
          channel: intent.channelId,
          mac: intent.mac,
          reason: (err as Error).message,
        });
      }
    }
  }
}
