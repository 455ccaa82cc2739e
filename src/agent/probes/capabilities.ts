/**
 * What a device can do, as the agent's probes discover it.
 *
 * The API and the scheduler read these names; keep them stable. New fields may
 * be added freely (optional ones preferred). A section whose probe failed keeps
 * its neutral default (0, '' or []) and `runProbes` reports a warning saying why,
 * so a 0 here means "unknown", never "measured zero".
 */

export type Virtualization = 'container' | 'vm' | 'none' | (string & {});

export interface OsCapabilities {
  platform: NodeJS.Platform;
  /** e.g. 'Debian GNU/Linux 12 (bookworm)', 'macOS' */
  distro?: string;
  /** distribution version, e.g. '12', '14.5' */
  release?: string;
  /** kernel release, e.g. '6.8.0-45-generic' */
  kernel: string;
  hostname: string;
  virtualization?: Virtualization;
  /** board or machine model, e.g. 'Raspberry Pi 4 Model B Rev 1.4' (from /proc/device-tree/model) */
  board?: string;
}

export interface CpuCapabilities {
  model: string;
  vendor: string;
  arch: string;
  physicalCores: number;
  logicalCores: number;
  baseMhz?: number;
  maxMhz?: number;
  /** AI-relevant ISA extensions only, lower case (see AI_CPU_FLAGS in cpu.ts) */
  flags: string[];
  /** quick single-thread throughput figure (sha256 MB/s), from cpuSpeedProbe */
  speedScore?: number;
}

export interface MemoryCapabilities {
  totalBytes: number;
  availableBytes: number;
  swapTotalBytes: number;
  swapFreeBytes: number;
}

export interface DiskCapabilities {
  mount: string;
  filesystem: string;
  device: string;
  totalBytes: number;
  freeBytes: number;
  rotational?: boolean;
}

export interface NetworkCapabilities {
  name: string;
  /** CIDR strings, e.g. '192.0.2.2/24', 'fe80::1/64' */
  addresses: string[];
  mac?: string;
  speedMbps?: number;
  wireless?: boolean;
  up?: boolean;
  mtu?: number;
  /** no backing hardware device (bridge, veth, ifb, tun ...) */
  virtual?: boolean;
}

export type GpuVendor = 'nvidia' | 'amd' | 'apple' | 'intel';

export interface GpuCapabilities {
  /** index as the vendor tool reports it; MIG instances share their parent's index */
  index: number;
  vendor: GpuVendor;
  name: string;
  uuid?: string;
  memoryTotalBytes?: number;
  memoryUsedBytes?: number;
  /** CUDA compute capability, e.g. '8.0' */
  computeCapability?: string;
  driver?: string;
  utilizationPct?: number;
  temperatureC?: number;
  /** PCI address as the vendor tool prints it, e.g. '00000000:01:00.0' */
  pciBusId?: string;
  integrated?: boolean;
  /** set on a MIG instance: the uuid of the physical GPU it is carved from */
  migParent?: string;
  /** MIG profile, e.g. '3g.40gb' */
  migProfile?: string;
  /** GPU shares system memory (Apple Silicon); memoryTotalBytes is then the system total */
  unifiedMemory?: boolean;
  coreCount?: number;
  /** PCI vendor:device, e.g. '8086:591b', when known */
  pciId?: string;
}

export type AcceleratorType = 'npu' | 'tpu' | 'jetson' | (string & {});

export interface AcceleratorCapabilities {
  type: AcceleratorType;
  name: string;
  /** device node, e.g. '/dev/accel/accel0', '/dev/apex_0' */
  path?: string;
  vendor?: string;
  /** PCI or USB vendor:product id, e.g. '8086:7d1d', '1a6e:089a' */
  id?: string;
}

export interface PowerCapabilities {
  onBattery: boolean;
  batteryPct?: number;
  charging?: boolean;
  acOnline?: boolean;
}

export interface Capabilities {
  os: OsCapabilities;
  cpu: CpuCapabilities;
  memory: MemoryCapabilities;
  disks: DiskCapabilities[];
  network: NetworkCapabilities[];
  gpus: GpuCapabilities[];
  accelerators: AcceleratorCapabilities[];
  power: PowerCapabilities;
}

/** The neutral starting point `runProbes` fills in. */
export function emptyCapabilities(platform: NodeJS.Platform, arch: string): Capabilities {
  return {
    os: { platform, kernel: '', hostname: '' },
    cpu: { model: '', vendor: '', arch, physicalCores: 0, logicalCores: 0, flags: [] },
    memory: { totalBytes: 0, availableBytes: 0, swapTotalBytes: 0, swapFreeBytes: 0 },
    disks: [],
    network: [],
    gpus: [],
    accelerators: [],
    power: { onBattery: false },
  };
}
