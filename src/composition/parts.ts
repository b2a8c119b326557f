/** The parts the composition root builds (daemon.ts's start(), in this order) and its steps share. */
import type { SessionManager, JournalStore } from '../sessions/index.ts';
import type { Merchant, Pricing } from '../merchant/index.ts';
import type { PaymentPlugins } from '../payments/index.ts';
import type { Ipv6Gate, KernelQuota, Shaper, Valve } from '../portal/index.ts';
import type { Meter } from '../meter/index.ts';
import type { UbusClient } from '../ubus/index.ts';
import type { EventPublisher } from '../api/index.ts';
import type { Gatekeeper } from '../gate/index.ts';
import type { SinkHost, VenueRoaming } from '../upstream/index.ts';

export interface Parts {
  store: JournalStore;
  sessions: SessionManager;
  valve: Valve;
  kernelQuota: KernelQuota | null;
  /** The IPv6 gate (gate/portal.ts): the walled garden's IPv6 addresses are fed to it. */
  ipv6Gate: Ipv6Gate | null;
  shaper: Shaper | null;
  gates: Gatekeeper;
  pricing: Pricing;
  payments: PaymentPlugins;
  merchant: Merchant;
  upstream: SinkHost;
  ubus: UbusClient;
  events: EventPublisher;
  meter: Meter;
  /** Roaming within the venue (main.venue; docs/roaming.md); undefined when the router is in none. */
  venue?: VenueRoaming | undefined;
}
