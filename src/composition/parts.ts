/** The parts the composition root builds (daemon.ts's start(), in this order) and its steps share. */
import type { SessionManager, JournalStore } from '../sessions/index.ts';
import type { Merchant, Pricing } from '../merchant/index.ts';
import type { PaymentPlugins } from '../payments/index.ts';
import type { Ipv6Gate, KernelCounters, KernelQuota, MeteringGuard, Shaper, Valve } from '../portal/index.ts';
import type { Meter } from '../meter/index.ts';
import type { UbusClient } from '../ubus/index.ts';
import type { EventPublisher } from '../api/index.ts';
import type { GardenKeeper, Gatekeeper } from '../gate/index.ts';
import type { SinkHost } from '../upstream/index.ts';

export interface Parts {
  store: JournalStore;
  sessions: SessionManager;
  valve: Valve;
  kernelQuota: KernelQuota | null;
  counters: KernelCounters | null;
  ipv6Gate: Ipv6Gate | null;
  metering: MeteringGuard;
  shaper: Shaper | null;
  gates: Gatekeeper;
  pricing: Pricing;
  payments: PaymentPlugins;
  merchant: Merchant;
  upstream: SinkHost;
  ubus: UbusClient;
  events: EventPublisher;
  meter: Meter;
  garden: GardenKeeper;
  /** Flushed on stop, in order, after upstream: the table watch, the LAN endpoint, the garden, each method. */
  closers: Array<() => Promise<void>>;
}
