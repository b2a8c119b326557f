/** A JSON-safe view of a Config for `stats`, logs and error reports: secrets masked, bigints as decimal strings. */
import type { Config } from './types.ts';

export type JsonSafe<T> = T extends bigint
  ? string
  : T extends readonly (infer U)[]
    ? JsonSafe<U>[]
    : T extends object
      ? { -readonly [K in keyof T]: JsonSafe<T[K]> }
      : T;

export type RedactedConfig = JsonSafe<Config>;

/** A set secret becomes "***"; an unset one stays "" so the view still tells whether it is configured. */
const mask = (secret: string): string => (secret === '' ? '' : '***');

function jsonSafe<T>(value: T): JsonSafe<T> {
  if (typeof value === 'bigint') return value.toString() as JsonSafe<T>;
  if (Array.isArray(value)) return value.map(jsonSafe) as JsonSafe<T>;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafe(v)])) as JsonSafe<T>;
  }
  return value as JsonSafe<T>;
}

export function redactConfig(config: Config): RedactedConfig {
  const view = jsonSafe(config);
  view.radius.secret = mask(config.radius.secret);
  view.radius.dasSecret = mask(config.radius.dasSecret);
  view.mqtt.password = mask(config.mqtt.password);
  view.mqtt.commandSecret = mask(config.mqtt.commandSecret);
  view.hook.secret = mask(config.hook.secret);
  view.http.pcsyncSecret = mask(config.http.pcsyncSecret);
  return view;
}
