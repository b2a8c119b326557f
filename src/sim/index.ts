export { PortalModel } from './portal.ts';
export type { AuthArgs, ExecResult, GatewayInfo, PortalConfig, PortalModelJson, SimClient } from './portal.ts';
export { TrafficSimulator, simulatedMac, type TrafficOptions, type TrafficStepReport } from './traffic.ts';
export { listenNdsctlSocket, portalRequestHandler, type NdsctlRequestHandler, type NdsctlSocketServer } from './socket.ts';
