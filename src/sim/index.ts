export { PortalModel } from './portal.ts';
export { TrafficSimulator } from './traffic.ts';
export { listenNdsctlSocket, portalRequestHandler } from './socket.ts';
