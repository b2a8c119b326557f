/**
 * The config files on disk into Config: reads the UCI file and its secrets file (secrets.ts), merges them and hands the
 * package to the pure loader (load.ts), naming the file in what it throws. The only part of loading that waits on I/O.
 */
import { readFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { SluiceError } from '../errors.ts';
import {
  ConfigError,
  configFromUci,
  configFromUciPartial,
  type ConfigFromUciOptions,
  type PartialConfig,
} from './load.ts';
import type { Config } from './types.ts';
import { parseUci, type UciPackage } from './uci.ts';
import { mergeSecrets, secretsPathFor } from './secrets.ts';

export interface LoadConfigOptions extends ConfigFromUciOptions {
  readFile?: (path: string) => Promise<string>;
  /** The secrets file; default `<path>_secrets` (/etc/config/sluice_secrets). Absent = no secrets file. */
  secretsPath?: string;
}

async function readUci(path: string, options: LoadConfigOptions, missing?: 'absent'): Promise<UciPackage | undefined> {
  let data: string;
  try {
    data = await (options.readFile ?? ((p: string) => readFile(p, 'utf8')))(path);
  } catch (err) {
    // The secrets file is optional: a router that keeps no secret, or one the upgrade has not reached yet.
    if (missing === 'absent' && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SluiceError(
      'ERR_CONFIG_READ',
      `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`,
      {
        cause: err,
        details: { file: path },
      },
    );
  }
  return parseUci(data, path);
}

/**
 * The main file with its secrets file merged in (secrets.ts). Errors: ERR_CONFIG_READ, ERR_UCI_PARSE of either file.
 */
async function readWithSecrets(path: string, options: LoadConfigOptions): Promise<ReturnType<typeof mergeSecrets>> {
  const [main, secrets] = await Promise.all([
    readUci(path, options),
    readUci(options.secretsPath ?? secretsPathFor(path), options, 'absent'),
  ]);
  return mergeSecrets(main!, secrets);
}

/**
 * Reads, parses and validates a UCI file and its secrets file. Errors: ERR_CONFIG_READ, ERR_UCI_PARSE,
 * ERR_CONFIG_INVALID.
 */
export async function loadConfig(path: string, options: LoadConfigOptions = {}): Promise<Config> {
  const { pkg, problems } = await readWithSecrets(path, options);
  try {
    if (problems.length > 0) throw new ConfigError(problems.map(({ effect: _effect, ...p }) => p));
    return configFromUci(pkg, { hostname: options.hostname ?? osHostname() });
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.problems, path);
    throw err;
  }
}

/**
 * Reads and parses a UCI file and its secrets file and keeps the valid part (configFromUciPartial).
 * Errors: ERR_CONFIG_READ, ERR_UCI_PARSE.
 */
export async function loadConfigPartial(path: string, options: LoadConfigOptions = {}): Promise<PartialConfig> {
  const merged = await readWithSecrets(path, options);
  const partial = configFromUciPartial(merged.pkg, {
    hostname: options.hostname ?? osHostname(),
    ...(options.sections && { sections: options.sections }),
  });
  return { ...partial, problems: [...merged.problems, ...partial.problems], exposedSecrets: merged.exposed };
}
