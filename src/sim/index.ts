/**
 * The device simulator: many lightweight simulated agents in one process, driving a real NEXUS
 * server over real sockets (bench/devices.ts). Only `node:` modules: usable against any server.
 */
export { DeviceFleet, caPinOf, fetchCaUnverified, percentiles, type Detection, type FleetOptions, type JoinResult, type Percentiles, type SimDevice, type WindowStats } from './fleet.js';
export { HttpError, HttpPool, type HttpPoolOptions, type HttpResponse } from './http.js';
export { cpuPercent, sampleProcess, systemPercent, type ProcSample } from './proc.js';
export { startFloorServer, type FloorServer } from './floor.js';
