/**
 * Configuration: UCI parsing and writing (atomic replace is storage/'s), the typed loader, cross-field rules, the
 * reload diff.
 */
export type {
  BatchRefundPolicy,
  BatchSettlementConfig,
  Config,
  EscrowConfig,
  HookConfig,
  LimitsConfig,
  MainConfig,
  MqttConfig,
  PricingPlan,
  RadiusConfig,
  TollgateConfig,
  UptoConfig,
  X402Config,
} from './types.ts';
export type { MqttFormat } from './mqtt.ts';
export type { Metric } from './values.ts';
export { payPageUrl } from './http.ts';
export { quoteUci } from './serialize.ts';
export { type OwnSection } from './load.ts';
export { loadConfigPartial } from './load-file.ts';
export { type ConfigProblem } from './reader.ts';
export { redactConfig } from './redact.ts';
export { withOverrides, type RunningParts } from './reload-diff.ts';
export { ConfigReloader, logExposedSecrets, logProblems } from './reloader.ts';
export { walledGardenHosts } from './garden-hosts.ts';
