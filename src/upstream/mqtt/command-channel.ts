/**
 * What the MQTT sink does with a message on `<prefix>/<router>/cmd`: verify it (commands.ts), run the admin command
 * it names, and say what the reply reports (ok with the result, or the error's code). A verified command's nonce is
 * on flash (nonces.json in the queue directory, fsynced) BEFORE the command runs: a kill -9 between the two loses at
 * most a command that never ran (its sender sees no reply and sends a new one), never lets the same signed command
 * run twice. A command whose nonce cannot be saved is not run. A damaged nonces.json (torn by a bad flash, edited by
 * hand) is not read as "no nonces": every command signed before the daemon read it is refused instead, and that
 * bound is saved with the next nonces, so a restart soon after still refuses them (storage/nonce-file.ts, shared with
 * PC-sync's nonces).
 */
import { join } from 'node:path';
import { toSluiceError, type SluiceError } from '../../errors.ts';
import type { Log } from '../../log.ts';
import { openNonceFile, saveNonces, type NonceTable } from '../../storage/index.ts';
import { CommandError, type CommandVerifier } from './commands.ts';

const NONCES_FILE = 'nonces.json';

export interface CommandChannelDeps {
  verifier: CommandVerifier;
  log: Log;
  /** Runs an admin command like the ubus method of that name; resolves with its reply. */
  command?: (name: string, args: Record<string, unknown>) => Promise<unknown>;
}

export class CommandChannel {
  readonly counters = { commands_accepted: 0, commands_refused: 0 };
  /** nonces.json once opened. Each save writes every nonce seen so far, so a later write never loses an earlier one. */
  private file: NonceTable | null = null;

  constructor(private readonly deps: CommandChannelDeps) {}

  /**
   * Restores the nonces saved in `dir` and saves them there from now on. `atStart`: the daemon's start, where the file
   * is read synchronously (storage/json-table.ts JsonTableOpen).
   */
  async open(dir: string, { atStart = false }: { atStart?: boolean } = {}): Promise<void> {
    const read = await openNonceFile(join(dir, NONCES_FILE), NONCES_FILE, 'ERR_STATE_LOST', { atStart });
    this.file = read.table;
    if (read.damaged !== null) return this.lost(read.damaged);
    this.deps.verifier.restore(read.seen.nonces);
    if (read.seen.refusedUpTo !== null) this.deps.verifier.refuseSignedUpTo(read.seen.refusedUpTo);
  }

  private lost(reason: string): void {
    const now = this.deps.verifier.refuseSignedUpToNow();
    this.deps.log.error('mqtt: the record of used command nonces is damaged: commands signed before now are refused', {
      code: 'ERR_STATE_LOST',
      reason,
      refused_up_to: new Date(now).toISOString(),
    });
  }

  /** The reply to one command message (never throws: a refusal is a reply too). */
  async answer(payload: Buffer): Promise<Record<string, unknown>> {
    try {
      const cmd = this.deps.verifier.verify(payload);
      // Durable before acting. The nonce stays burned in memory even if the save fails: a replay in this run is
      // refused too, and the sender retries with a new nonce.
      const saved = await this.persist();
      if (saved !== null) {
        this.counters.commands_refused++;
        this.deps.log.warn('mqtt command not run: its nonce could not be saved', {
          cmd: cmd.cmd,
          reason: saved.message,
        });
        return {
          id: cmd.id,
          nonce: cmd.nonce,
          cmd: cmd.cmd,
          ok: false,
          error: { code: saved.code, message: `not run: ${saved.message}` },
        };
      }
      try {
        const result = await this.run(cmd.cmd, cmd.args);
        this.counters.commands_accepted++;
        this.deps.log.info('mqtt command', { cmd: cmd.cmd, id: cmd.id ?? undefined });
        return { id: cmd.id, nonce: cmd.nonce, cmd: cmd.cmd, ok: true, result };
      } catch (err) {
        const e = toSluiceError(err);
        this.counters.commands_accepted++;
        return { id: cmd.id, nonce: cmd.nonce, cmd: cmd.cmd, ok: false, error: { code: e.code, message: e.message } };
      }
    } catch (err) {
      const e =
        err instanceof CommandError ? err : new CommandError('ERR_MQTT_COMMAND_INVALID', toSluiceError(err).message);
      this.counters.commands_refused++;
      this.deps.log.warn('mqtt command refused', { code: e.code, reason: e.message });
      return { id: e.id, nonce: e.nonce, ok: false, error: { code: e.code, message: e.message } };
    }
  }

  private async run(name: string, args: Record<string, unknown>): Promise<unknown> {
    if (!this.deps.command) throw new CommandError('ERR_MQTT_COMMAND_UNKNOWN', 'this daemon runs no commands');
    const result = await this.deps.command(name, args);
    // Replies are JSON-able whatever the format: bigints become decimal strings.
    return JSON.parse(
      JSON.stringify(result ?? null, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
    ) as unknown;
  }

  /** Writes the nonces seen (a failure is logged: a replay after a restart would then be accepted). */
  async saveNonces(): Promise<void> {
    const err = await this.persist();
    if (err) this.deps.log.warn('mqtt: cannot persist command nonces', { reason: err.message });
  }

  /** Queues one write of every nonce seen so far; resolves once it is on flash (null) or with why not. */
  private persist(): Promise<SluiceError | null> {
    if (this.file === null) return Promise.resolve(null);
    // A write queued behind another carries both: the table's snapshot is taken when it starts (storage/json-table.ts).
    return saveNonces(this.file, this.deps.verifier.saved()).then(
      () => null,
      (err: unknown) => toSluiceError(err),
    );
  }
}
