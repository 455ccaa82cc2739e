/**
 * Tiers: `edge` (boards, small battery devices), `cloud` (VMs and metal rented from a provider),
 * `local` (everything else: desktops, laptops, servers you own). Inferred from what the probes
 * report (src/agent/probes/capabilities.ts); an explicit tier (registration, profile) wins.
 * Pure. See ADR 009.
 */
import type { Tier } from '../resources/device.js';

/** The capability fields tier inference reads; probe `Capabilities` and API `DeviceCapabilities` both fit. */
export interface TierInput {
  os?: { platform?: string; board?: string; virtualization?: string; hostname?: string; distro?: string };
  cpu?: { arch?: string; logicalCores?: number; model?: string };
  memory?: { totalBytes?: number };
  power?: { onBattery?: boolean; batteryPct?: number; charging?: boolean };
  accelerators?: { type?: string; name?: string }[];
  /** DMI, if a probe reports it one day (sys_vendor, product_name, bios_vendor, chassis_asset_tag). */
  dmi?: { vendor?: string; product?: string; biosVendor?: string; chassisAssetTag?: string };
}

export interface TierVerdict {
  tier: Tier;
  /** Which evidence decided it, for people (`nexus devices`, logs). */
  reason: string;
}

/**
 * DMI vendor/product strings of cloud providers, as they appear in `os.board` (the probe falls back
 * to "<sys_vendor> <product_name>") or in `dmi`. Azure and local Hyper-V both say "Microsoft
 * Corporation Virtual Machine"; Azure's fixed chassis asset tag tells them apart when reported,
 * otherwise we take it for Azure (a Hyper-V guest at home is rare; set its tier explicitly).
 */
const CLOUD_DMI: [RegExp, string][] = [
  [/\bAmazon EC2\b/i, 'Amazon EC2'],
  [/\bGoogle Compute Engine\b/i, 'Google Compute Engine'],
  [/\bMicrosoft Corporation\b.*\bVirtual Machine\b/i, 'Microsoft Azure'],
  [/\bDigitalOcean\b/i, 'DigitalOcean'],
  [/\bHetzner\b/i, 'Hetzner'],
  [/\b(Linode|Akamai)\b/i, 'Linode/Akamai'],
  [/\bVultr\b/i, 'Vultr'],
  [/\bScaleway\b/i, 'Scaleway'],
  [/\bOVH/i, 'OVHcloud'],
  [/\bAlibaba Cloud\b|\bAliyun\b/i, 'Alibaba Cloud'],
  [/\bTencent Cloud\b/i, 'Tencent Cloud'],
  [/\bOracle ?Cloud\b|\bOracleCloud\.com\b/i, 'Oracle Cloud'],
  [/\bExoscale\b/i, 'Exoscale'],
  [/\bUpCloud\b/i, 'UpCloud'],
  [/\bIBM:Cloud\b|\bIBM Cloud\b/i, 'IBM Cloud'],
];

/** Azure's chassis asset tag (the same on every Azure VM). */
const AZURE_ASSET_TAG = '7783-7084-3265-9085-8269-3286-77';

/** Host names cloud providers hand out by default. */
const CLOUD_HOSTNAME: [RegExp, string][] = [
  [/\.(ec2|compute)\.internal$/i, 'Amazon EC2 host name'],
  [/\.c\.[a-z0-9-]+\.internal$/i, 'Google Compute Engine host name'],
  [/\.cloudapp\.net$|\.internal\.cloudapp\.net$/i, 'Azure host name'],
];

/** Single-board computers and embedded modules (device-tree model strings). */
const EDGE_BOARD = /Raspberry Pi|Jetson|Orange ?Pi|Banana ?Pi|NanoPi|Rock ?Pi|Radxa|ROCK ?\d|Pine64|PineBook|Rockchip|ODROID|Khadas|BeagleBone|BeagleBoard|Coral Dev Board|Tinker Board|Libre Computer|Allwinner|Amlogic|i\.MX|StarFive|VisionFive|Milk-V|LicheePi|Quartz64|Turing RK1/i;

const GiB = 1024 ** 3;

/** At most this much is a "small" device: with a battery, it is edge (a phone, a handheld, a battery SBC), not a laptop. */
const SMALL = { logicalCores: 4, memoryBytes: 8 * GiB };

/** `inferTier` with the evidence that decided it. */
export function explainTier(caps: TierInput): TierVerdict {
  const os = caps.os ?? {};
  const dmiText = [os.board, caps.dmi?.vendor, caps.dmi?.product, caps.dmi?.biosVendor].filter(Boolean).join(' ');

  // Cloud first: a Graviton VM is arm64 with little memory, but it is still the cloud.
  if (caps.dmi?.chassisAssetTag === AZURE_ASSET_TAG) return { tier: 'cloud', reason: 'Azure chassis asset tag' };
  for (const [re, provider] of CLOUD_DMI) {
    if (re.test(dmiText)) return { tier: 'cloud', reason: `DMI says ${provider} (${dmiText.trim()})` };
  }
  if (os.hostname) {
    for (const [re, what] of CLOUD_HOSTNAME) if (re.test(os.hostname)) return { tier: 'cloud', reason: `${what} ${os.hostname}` };
  }

  if (os.platform === 'android') return { tier: 'edge', reason: 'Android device' };
  const jetson = caps.accelerators?.find((a) => a.type === 'jetson');
  if (jetson) return { tier: 'edge', reason: `Jetson module (${jetson.name ?? 'jetson'})` };
  if (os.board && EDGE_BOARD.test(os.board)) return { tier: 'edge', reason: `single-board computer (${os.board})` };

  const cores = caps.cpu?.logicalCores ?? 0;
  const mem = caps.memory?.totalBytes ?? 0;
  const small = cores > 0 && cores <= SMALL.logicalCores && mem > 0 && mem <= SMALL.memoryBytes;
  const hasBattery = caps.power?.onBattery === true || caps.power?.batteryPct !== undefined || caps.power?.charging === true;
  if (hasBattery && small) return { tier: 'edge', reason: `battery-powered small device (${cores} cores, ${(mem / GiB).toFixed(1)} GiB)` };

  // A bare-metal Linux ARM board that names itself through a device tree, small as a board is.
  const arm = /^(arm|arm64|aarch64)/i.test(caps.cpu?.arch ?? '');
  if (os.platform === 'linux' && arm && os.board && os.virtualization !== 'vm' && small) {
    return { tier: 'edge', reason: `small ARM board (${os.board})` };
  }
  return { tier: 'local', reason: 'no sign of a cloud provider or an edge device' };
}

/**
 * The tier a device most likely belongs to, from its capabilities alone.
 *
 * @example
 * inferTier({ os: { platform: 'linux', board: 'Raspberry Pi 4 Model B Rev 1.5' } }) // 'edge'
 * inferTier({ os: { platform: 'linux', board: 'Amazon EC2 g5.xlarge', virtualization: 'vm' } }) // 'cloud'
 */
export function inferTier(caps: TierInput): Tier {
  return explainTier(caps).tier;
}
