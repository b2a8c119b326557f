/**
 * The router's dnsmasq told to add each walled-garden name's answers to sluice's garden sets (`nftset`, dnsmasq 2.87+,
 * as mwan3 and openNDS's FQDN walled garden use it): the addresses a client is actually given for a name are the ones
 * opened, so a CDN that answers each client with another edge stays reachable, where sluice's own lookups
 * (walled-garden.ts) see only the answers the router got. dnsmasq adds every answer, private ones too; the garden's
 * chain refuses those before it looks at any set (walled-garden-nft.ts `neverOpened`, the same ranges as
 * walled-garden-refusal.ts).
 *
 * The lines go into a file of each dnsmasq instance's conf-dir (OpenWrt's init reads `/tmp/dnsmasq.d` and
 * `/tmp/dnsmasq.<section>.d`: RAM, no flash write), and dnsmasq is restarted (a reload does not read its files again)
 * only when they changed: at the first start and at a reload that changes the garden's names.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import { DNSMASQ_SETS, GARDEN_TABLE } from './walled-garden-nft.ts';

/** The file sluice owns in each conf-dir. */
export const GARDEN_DNSMASQ_FILE = 'sluice-garden.conf';

/** A name dnsmasq takes between slashes: labels of letters, digits, `-` and `_`. */
const LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';
const NAME = new RegExp(`^(?=.{1,253}$)(${LABEL}\\.)*${LABEL}$`);

/**
 * dnsmasq's lines for the garden's names (addresses and anything not a name are left out): one `nftset` line a name,
 * its IPv4 answers to `dns4`, its IPv6 ones to `dns6`. dnsmasq matches a name and its subdomains. '' for none. Pure.
 */
export function gardenNftsetConf(hosts: readonly string[]): string {
  const names = [...new Set(hosts.filter((h) => isIP(h) === 0 && NAME.test(h)).map((h) => h.toLowerCase()))];
  const sets = `4#inet#${GARDEN_TABLE}#${DNSMASQ_SETS.v4},6#inet#${GARDEN_TABLE}#${DNSMASQ_SETS.v6}`;
  if (names.length === 0) return '';
  return `# sluice's walled garden: written by the daemon\n${names.map((n) => `nftset=/${n}/${sets}\n`).join('')}`;
}

/** dnsmasq's conf-dirs on an OpenWrt router (those its init made), none elsewhere. */
export function openwrtConfDirs(root = '/tmp'): string[] {
  try {
    return readdirSync(root)
      .filter((name) => /^dnsmasq(\.[A-Za-z0-9_]+)?\.d$/.test(name))
      .map((name) => join(root, name))
      .filter((dir) => statSync(dir).isDirectory());
  } catch {
    return [];
  }
}

/**
 * Whether the router's dnsmasq takes `nftset` lines (`dnsmasq --version`'s compile options): one built without it
 * (OpenWrt's plain `dnsmasq`; `dnsmasq-full` has it) refuses to start with one, which would take the LAN's DNS down.
 */
export function dnsmasqHasNftset(command = 'dnsmasq', timeoutMs = 5000): () => Promise<boolean> {
  return () =>
    new Promise((resolve) => {
      execFile(command, ['--version'], { timeout: timeoutMs }, (err, stdout) =>
        resolve(!err && /^Compile time options:.* nftset( |$)/m.test(String(stdout))),
      );
    });
}

/** `/etc/init.d/dnsmasq restart` where there is one (OpenWrt). */
export function restartDnsmasq(script = '/etc/init.d/dnsmasq', timeoutMs = 15_000): () => Promise<void> {
  return () =>
    new Promise((resolve, reject) => {
      if (!existsSync(script)) return resolve();
      execFile(script, ['restart'], { timeout: timeoutMs }, (err) => (err ? reject(err) : resolve()));
    });
}

export interface GardenDnsmasqOptions {
  confDirs?: () => string[];
  /** Whether dnsmasq takes `nftset` (default: asks `dnsmasq --version`, once). */
  hasNftset?: () => Promise<boolean>;
  restart?: () => Promise<void>;
  log: Logger;
}

/**
 * Keeps the garden's file in each conf-dir and restarts dnsmasq when one changed. Never throws: failures are logged.
 */
export class GardenDnsmasq {
  readonly #confDirs: () => string[];
  readonly #restart: () => Promise<void>;
  readonly #log: Logger;
  readonly #hasNftset: () => Promise<boolean>;
  #nftset: boolean | undefined;

  constructor(options: GardenDnsmasqOptions) {
    this.#confDirs = options.confDirs ?? (() => openwrtConfDirs());
    this.#hasNftset = options.hasNftset ?? dnsmasqHasNftset();
    this.#restart = options.restart ?? restartDnsmasq();
    this.#log = options.log;
  }

  /** The garden's hosts now: their names written (or the file removed when none), dnsmasq restarted on a change. */
  async follow(hosts: readonly string[]): Promise<void> {
    const dirs = this.#confDirs();
    if (dirs.length === 0) return;
    if (this.#nftset === undefined) {
      this.#nftset = await this.#hasNftset();
      if (!this.#nftset)
        this.#log.info("walled garden: dnsmasq has no nftset (dnsmasq-full has): sluice's lookups only");
    }
    // Without nftset, a file left by an earlier dnsmasq is removed: this one would refuse to start with it.
    const text = this.#nftset ? gardenNftsetConf(hosts) : '';
    let changed = 0;
    for (const dir of dirs) {
      const path = join(dir, GARDEN_DNSMASQ_FILE);
      try {
        if ((await readFile(path, 'utf8').catch(() => '')) === text) continue;
        if (text === '') await rm(path, { force: true });
        else {
          await writeFile(`${path}.new`, text);
          await rename(`${path}.new`, path);
        }
        changed++;
      } catch (err) {
        this.#log.warn('walled garden: dnsmasq file not written', { path, reason: (err as Error).message });
      }
    }
    if (changed === 0) return;
    try {
      await this.#restart();
      const names = text.split('\n').filter((l) => l.startsWith('nftset=')).length;
      this.#log.info("walled garden: dnsmasq restarted, adding the names' answers", { names });
    } catch (err) {
      this.#log.warn('walled garden: dnsmasq not restarted', { reason: (err as Error).message });
    }
  }
}
