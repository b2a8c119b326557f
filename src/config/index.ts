/** Configuration: UCI parsing and writing (atomic replace is storage/'s), the typed loader, cross-field rules, the reload diff. */
export type {
  BatchRefundPolicy, BatchSettlementConfig, Config, EscrowConfig, HookConfig, LimitsConfig, MainConfig, Metric, MqttConfig, PortalFlavour, PricingPlan,
  RadiusConfig, UptoConfig, X402Config,
} from './types.ts';
export { UPTO_DEFAULTS, UPTO_MAX_TIMEOUT_S, UPTO_MIN_TIMEOUT_S } from './upto.ts';
export type { MqttFormat } from './mqtt.ts';
export {
  parseUci, findSection, sectionsOfType, anonymousSectionName, isValidUciName, isValidUciType, UciParseError,
  type UciPackage, type UciSection, type UciValue,
} from './uci.ts';
export { serializeUci, quoteUci } from './serialize.ts';
export { writeUci } from './write.ts';
export {
  loadConfig, loadConfigPartial, configFromUci, configFromUciPartial, ConfigError, DEFAULTS, type ConfigFromUciOptions,
  type LoadConfigOptions, type PartialConfig,
} from './load.ts';
export { formatProblem, type ConfigProblem, type ProblemEffect } from './reader.ts';
export { CROSS_RULES, crossRuleViolations, type CrossRule } from './rules.ts';
export { redactConfig, type RedactedConfig, type JsonSafe } from './redact.ts';
export { splitCommand, parseQuantity, parseBool } from './values.ts';
export {
  RESTART_OPTIONS, asRunning, reloadDiff, restartRequired, runningConfig, withOverrides, type RunningParts,
} from './reload-diff.ts';
export { ConfigReloader, logExposedSecrets, logProblems, type ConfigReloaderOptions, type ReloadReply } from './reloader.ts';
export { mergeSecrets, secretsPathFor, SECRET_OPTIONS, type MergedSecrets } from './secrets.ts';
