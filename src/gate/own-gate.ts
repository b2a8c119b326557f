/**
 * sluice's own gate for the daemon (`main.portal 'sluice'`, portal/own-gate.ts): where it answers the valve (its
 * socket), what an unpaid device reaches (the LAN endpoint, TollGate's door, openNDS's usual router ports), and the
 * one start: the table installed keeping what an earlier run left passing, then the socket, before the gate's
 * reconcile asks it anything.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config, MainConfig } from '../config/index.ts';
import type { Log } from '../log.ts';
import { writeFileAtomic } from '../storage/index.ts';
import { neighbourTable, type NftRun, type OwnGateRuleset } from '../portal/index.ts';
import { OwnGate } from '../portal/own-gate.ts';
import { DEFAULT_ROUTER_PORTS, OWN_GATE_TABLE, ownGateScript } from '../portal/own-gate-nft.ts';
import { gateAnswer, OWN_GATE_SOCKET, OwnGateServer } from '../portal/own-gate-server.ts';

export type OwnGateConfig = Pick<Config, 'main' | 'http' | 'tollgate'>;

/** The gate's socket: `main.ndsctl_socket` when it names one, else /var/run/sluice/gate.sock. */
export function ownGateSocket(main: Pick<MainConfig, 'ndsctlSocket'>): string {
  return main.ndsctlSocket.startsWith('/') ? main.ndsctlSocket : OWN_GATE_SOCKET;
}

/** What the gate lets an unpaid device reach, from the config. */
export function ownGateRuleset(
  { http, tollgate }: OwnGateConfig,
  devices: readonly string[],
): Omit<OwnGateRuleset, 'paid'> {
  const door = tollgate !== null && tollgate.listen.port !== 0 ? [tollgate.listen.port] : [];
  return {
    devices,
    http: { host: http.host, port: http.port },
    tcpPorts: [...DEFAULT_ROUTER_PORTS, ...door],
  };
}

/**
 * The gate as fw4's include (`<state_dir>/gate.nft`, which the init script names in /etc/config/firewall) installs it
 * at boot and at every firewall reload, before and besides the daemon: the same idempotent script with no paid devices
 * of its own (those in the kernel's set stay). Written only when it changed (a flash write at a config change).
 */
export async function writeFw4Include(config: OwnGateConfig, devices: readonly string[], log: Log): Promise<void> {
  const path = join(config.main.stateDir, 'gate.nft');
  const head = "# sluice's own gate (main.portal 'sluice'), written by the daemon: fw4 includes it.\n";
  const text = `${head}${ownGateScript(ownGateRuleset(config, devices))}`;
  if ((await readFile(path, 'utf8').catch(() => '')) === text) return;
  try {
    await writeFileAtomic(path, text);
  } catch (err) {
    log.warn('the gate for fw4 not written', { path, reason: (err as Error).message });
  }
}

export interface OwnGatePart {
  gate: OwnGate;
  /** Its nft table's name (family inet), for the watch that makes it again. */
  table: string;
  socket: string;
  /** Installs the table (keeping the devices passing) and answers on the socket. */
  start(): Promise<void>;
  /** The socket closed; the table stays (the paid keep passing while sluice is away). */
  close(): Promise<void>;
}

export function ownGatePart(
  config: OwnGateConfig,
  devices: readonly string[],
  run: NftRun,
  o: { log: Log; neighbours?: () => Promise<string | null> },
): OwnGatePart {
  const { log, neighbours = neighbourTable() } = o;
  const gate = new OwnGate({ ruleset: ownGateRuleset(config, devices), run, neighbours, log });
  const socket = ownGateSocket(config.main);
  let server: OwnGateServer | undefined;
  return {
    gate,
    table: OWN_GATE_TABLE,
    socket,
    async start() {
      await gate.start();
      await writeFw4Include(config, devices, log);
      server = await OwnGateServer.listen(socket, gateAnswer(gate), log);
    },
    async close() {
      await server?.close();
    },
  };
}
