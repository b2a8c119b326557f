export { PortalModel } from './portal.ts';
export type { AuthArgs, Clock, ExecResult, GatewayInfo, PortalConfig, PortalModelJson, SimClient } from './portal.ts';
