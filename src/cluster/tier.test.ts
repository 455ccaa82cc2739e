import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { acceleratorsProbe } from '../agent/probes/accelerators.js';
import { cpuProbe } from '../agent/probes/cpu.js';
import { runProbes } from '../agent/probes/index.js';
import { osProbe } from '../agent/probes/os.js';
import { powerProbe } from '../agent/probes/power.js';
import { fixture } from '../agent/probes/testing.js';
import { explainTier, inferTier, type TierInput } from './tier.js';

const GiB = 1024 ** 3;
const x86 = (cores: number, gib: number): TierInput => ({ cpu: { arch: 'x64', logicalCores: cores }, memory: { totalBytes: gib * GiB } });

describe('inferTier', () => {
  it('recorded boards: Raspberry Pi and Jetson are edge', async () => {
    const pi = await runProbes(fixture('raspberry-pi-4', 'linux', 'arm64'), [osProbe, cpuProbe]);
    assert.equal(inferTier(pi.capabilities), 'edge');
    const jetson = await runProbes(fixture('jetson-nano', 'linux', 'arm64'), [acceleratorsProbe, osProbe]);
    assert.equal(inferTier(jetson.capabilities), 'edge');
    assert.match(explainTier(jetson.capabilities).reason, /Jetson/);
  });

  it('a recorded laptop on battery with a big CPU stays local', async () => {
    const laptop = await runProbes(fixture('laptop-on-battery'), [powerProbe]);
    assert.equal(laptop.capabilities.power.onBattery, true);
    assert.equal(inferTier({ ...laptop.capabilities, ...x86(16, 32) }), 'local');
  });

  it('cloud providers by DMI vendor/product (os.board or dmi)', () => {
    const boards = [
      'Amazon EC2 g5.xlarge', 'Amazon EC2 m5.metal', 'Google Google Compute Engine', 'Microsoft Corporation Virtual Machine',
      'DigitalOcean Droplet', 'Hetzner vServer', 'Linode Compute Instance', 'Vultr VC2', 'Scaleway SCW-DEV1-S', 'OVHcloud c2-7',
      'Alibaba Cloud ECS', 'Tencent Cloud CVM', 'OracleCloud.com t1', 'Exoscale Compute', 'UpCloud Cloud Server',
    ];
    for (const board of boards) assert.equal(inferTier({ os: { platform: 'linux', board, virtualization: 'vm' }, ...x86(4, 16) }), 'cloud', board);
    assert.equal(inferTier({ os: { platform: 'linux' }, dmi: { vendor: 'Amazon EC2', product: 'c7g.large' }, cpu: { arch: 'arm64', logicalCores: 2 }, memory: { totalBytes: 4 * GiB } }), 'cloud',
      'a small arm64 Graviton VM is cloud, not edge');
    assert.equal(inferTier({ os: { platform: 'linux' }, dmi: { chassisAssetTag: '7783-7084-3265-9085-8269-3286-77' } }), 'cloud');
  });

  it('cloud by default host names', () => {
    assert.equal(inferTier({ os: { platform: 'linux', hostname: 'ip-10-0-1-23.ec2.internal' } }), 'cloud');
    assert.equal(inferTier({ os: { platform: 'linux', hostname: 'ip-172-31-5-6.eu-west-1.compute.internal' } }), 'cloud');
    assert.equal(inferTier({ os: { platform: 'linux', hostname: 'gpu-1.c.my-project.internal' } }), 'cloud');
    assert.equal(inferTier({ os: { platform: 'linux', hostname: 'workstation' } }), 'local');
  });

  it('small battery-powered devices and small ARM boards are edge; Android is edge', () => {
    assert.equal(inferTier({ os: { platform: 'linux' }, power: { onBattery: false, batteryPct: 80 }, cpu: { arch: 'arm64', logicalCores: 4 }, memory: { totalBytes: 4 * GiB } }), 'edge');
    assert.equal(inferTier({ os: { platform: 'linux', board: 'Some Vendor XYZ-3568 board' }, cpu: { arch: 'arm64', logicalCores: 4 }, memory: { totalBytes: 8 * GiB } }), 'edge');
    assert.equal(inferTier({ os: { platform: 'linux', board: 'Radxa ROCK 5B' }, cpu: { arch: 'arm64', logicalCores: 8 }, memory: { totalBytes: 16 * GiB } }), 'edge');
    assert.equal(inferTier({ os: { platform: 'android' } }), 'edge');
  });

  it('everything else is local: desktops, big laptops, Macs, servers, unknown VMs', () => {
    assert.equal(inferTier({ os: { platform: 'linux', board: 'Dell Inc. Precision 7920 Tower', virtualization: 'none' }, ...x86(32, 128) }), 'local');
    assert.equal(inferTier({ os: { platform: 'darwin', board: 'MacBookAir10,1' }, power: { onBattery: true, batteryPct: 50 }, cpu: { arch: 'arm64', logicalCores: 8 }, memory: { totalBytes: 16 * GiB } }), 'local');
    assert.equal(inferTier({ os: { platform: 'darwin', board: 'MacBookAir10,1' }, cpu: { arch: 'arm64', logicalCores: 8 }, memory: { totalBytes: 8 * GiB } }), 'local');
    assert.equal(inferTier({ os: { platform: 'linux', board: 'QEMU Standard PC (Q35 + ICH9, 2009)', virtualization: 'vm' }, ...x86(4, 8) }), 'local');
    assert.equal(inferTier({ os: { platform: 'linux', board: 'Ampere Altra', virtualization: 'none' }, cpu: { arch: 'arm64', logicalCores: 80 }, memory: { totalBytes: 256 * GiB } }), 'local');
    assert.equal(inferTier({}), 'local');
  });
});
