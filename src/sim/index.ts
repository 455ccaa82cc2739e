/**
 * The device simulator: many lightweight simulated agents in one process, driving a real NEXUS
 * server over real sockets (bench/devices.ts). Only `node:` modules: usable against any server.
 */
export { DeviceFleet, type Detection, type FleetOptions, type JoinResult, type SimDevice, type WindowStats } from './fleet.js';
export { caPinOf, fetchCaUnverified } from './join-token.js';
export { percentiles, type Percentiles } from './stats.js';
export { HttpError, HttpPool, type HttpPoolOptions, type HttpResponse } from './http.js';
export { cpuPercent, sampleProcess, systemPercent, type ProcSample } from './proc.js';
export { startFloorServer, type FloorServer } from './floor.js';
