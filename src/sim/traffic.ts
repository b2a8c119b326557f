/**
 * Realistic traffic on a simulated portal (PortalModel), advanced in steps of simulated time: per-client rates
 * (a few heavy users, many light ones, idle devices), bursts (a few seconds at several times the device's rate, as when
 * a download starts or a link frees up: bytes arrive at a rate, never all at once), and occasional counter resets
 * (re-auth: new token, counters from 0), departures (the client leaves the list) and arrivals (new or returning
 * devices). Deterministic for a seed. Clients it authenticates itself stand for devices that paid some other way; the
 * demo's purchases authenticate theirs through the ndsctl interface, and traffic flows for every authenticated client
 * alike.
 */
import type { PortalModel } from './portal.ts';
import { prng } from '../prng.ts';

export interface TrafficOptions {
  /** Devices to create at populate(). */
  clients: number;
  seed?: number;
  /** Share of devices populate() authenticates directly (0..1). Default 0.5. */
  authenticatedShare?: number;
  /** Share of devices that are idle at a given moment. Default 0.4. */
  idleShare?: number;
  /** Median rate of an active device, bytes/s (rates are log-normal around it). Default 40 kB/s. */
  medianRateBps?: number;
  /** Per device per simulated second. Defaults: burst 0.02, reset 0.0005, departure 0.0005, arrival keeps the count. */
  burstChance?: number;
  resetChance?: number;
  departureChance?: number;
  /** Share of arrivals that are a device that left earlier (same MAC). Default 0.3. */
  returnShare?: number;
}

export interface TrafficStepReport {
  bytes: number;
  resets: number;
  departures: number;
  arrivals: number;
}

interface Device {
  mac: string;
  ip: string;
  rateBps: number;
  idle: boolean;
  present: boolean;
  /** Seconds of burst left, and the rate's multiple while it lasts. */
  burstLeftS: number;
  burstFactor: number;
}

/** Locally administered MACs 02:xx:… derived from an index, so runs are reproducible. */
export function simulatedMac(index: number): string {
  const b = [2, (index >>> 24) & 255, (index >>> 16) & 255, (index >>> 8) & 255, index & 255, 0x5a];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

function simulatedIp(index: number): string {
  return `10.${64 + ((index >>> 16) & 63)}.${(index >>> 8) & 255}.${index & 255}`;
}

export class TrafficSimulator {
  private readonly random: () => number;
  private readonly devices: Device[] = [];
  private readonly present = new Set<number>();
  private readonly away: number[] = [];
  private readonly o: Required<TrafficOptions>;

  constructor(
    readonly portal: PortalModel,
    options: TrafficOptions,
  ) {
    this.o = {
      seed: 1,
      authenticatedShare: 0.5,
      idleShare: 0.4,
      medianRateBps: 40_000,
      burstChance: 0.02,
      resetChance: 0.0005,
      departureChance: 0.0005,
      returnShare: 0.3,
      ...options,
    };
    this.random = prng(this.o.seed);
  }

  /** MACs of the devices currently in the portal's list. */
  macs(): string[] {
    return [...this.present].map((i) => this.devices[i]!.mac);
  }

  /** Creates the devices, all present, a share of them authenticated. */
  populate(): void {
    for (let i = 0; i < this.o.clients; i++) {
      const device = this.newDevice();
      this.arrive(this.devices.length - 1, device);
      if (this.random() < this.o.authenticatedShare) this.portal.auth(device.mac);
    }
  }

  /** Advances simulated time by `ms`: traffic for every authenticated device, then the random events. */
  step(ms: number): TrafficStepReport {
    const seconds = ms / 1000;
    const report: TrafficStepReport = { bytes: 0, resets: 0, departures: 0, arrivals: 0 };
    const chance = (perSecond: number): boolean => this.random() < 1 - Math.pow(1 - perSecond, seconds);
    for (const i of [...this.present]) {
      const d = this.devices[i]!;
      if (chance(0.05)) d.idle = this.random() < this.o.idleShare;
      if (!d.idle) {
        let bytes = d.rateBps * seconds * (0.5 + this.random());
        // ~10 s of extra traffic a burst on average, spread over 1–4 s: the step's share of it, not all of it at once.
        if (chance(this.o.burstChance)) {
          d.burstLeftS = 1 + 3 * this.random();
          d.burstFactor = 3 + 6 * this.random();
        }
        if (d.burstLeftS > 0) {
          const s = Math.min(seconds, d.burstLeftS);
          bytes += d.rateBps * (d.burstFactor - 1) * s;
          d.burstLeftS -= s;
        }
        const down = Math.floor(bytes * 0.9);
        const up = Math.floor(bytes * 0.1);
        if (this.portal.addTraffic(d.mac, down, up)) report.bytes += down + up;
      }
      if (chance(this.o.resetChance) && this.portal.get(d.mac)?.state === 'Authenticated') {
        // A re-auth: openNDS drops the client on deauth; it comes straight back with a new token and counters at 0.
        this.portal.deauth(d.mac);
        this.portal.addClient(d.mac, d.ip);
        this.portal.auth(d.mac);
        report.resets++;
      }
      if (chance(this.o.departureChance)) {
        this.portal.remove(d.mac);
        d.present = false;
        this.present.delete(i);
        this.away.push(i);
        report.departures++;
      }
    }
    // Arrivals replace departures on average, so the population stays near `clients`.
    const missing = this.o.clients - this.present.size;
    for (let k = 0; k < missing; k++) {
      if (!chance(Math.min(1, this.o.departureChance * this.o.clients))) continue;
      const back = this.away.length > 0 && this.random() < this.o.returnShare;
      const index = back ? this.away.splice(Math.floor(this.random() * this.away.length), 1)[0]! : this.devices.length;
      const device = back ? this.devices[index]! : this.newDevice();
      this.arrive(index, device);
      if (this.random() < this.o.authenticatedShare) this.portal.auth(device.mac);
      report.arrivals++;
    }
    return report;
  }

  private newDevice(): Device {
    const index = this.devices.length;
    // Log-normal spread: most devices trickle, a few stream.
    const z = Math.sqrt(-2 * Math.log(1 - this.random())) * Math.cos(2 * Math.PI * this.random());
    const device: Device = {
      mac: simulatedMac(index),
      ip: simulatedIp(index),
      rateBps: Math.round(this.o.medianRateBps * Math.exp(1.2 * z)),
      idle: this.random() < this.o.idleShare,
      present: false,
      burstLeftS: 0,
      burstFactor: 1,
    };
    this.devices.push(device);
    return device;
  }

  private arrive(index: number, device: Device): void {
    device.present = true;
    this.present.add(index);
    this.portal.addClient(device.mac, device.ip);
  }
}
