import assert from 'node:assert/strict';
import { cpus, totalmem } from 'node:os';
import { test } from 'node:test';
import { blockDeviceName, parseMounts } from './disks.js';
import { hostProbeEnv } from './env.js';
import { parseRocmSmiJson } from './gpu-amd.js';
import { parseSpDisplays } from './gpu-apple.js';
import { parseNvidiaCsv, parseNvidiaList } from './gpu-nvidia.js';
import {
  ALL_PROBES, acceleratorsProbe, cpuProbe, cpuSpeedProbe, disksProbe, gpusProbe, memoryProbe, networkProbe, osProbe,
  powerProbe, runProbes,
} from './index.js';
import { fixture } from './testing.js';
import type { Probe, ProbeEnv } from './types.js';

// ---- whole machines ----------------------------------------------------------

test('this machine, live: agrees with node:os and measures a speed score', async () => {
  const { capabilities, warnings } = await runProbes(hostProbeEnv());
  assert.equal(capabilities.cpu.logicalCores, cpus().length);
  assert.equal(capabilities.memory.totalBytes, totalmem());
  assert.ok(capabilities.cpu.speedScore! > 0);
  assert.ok(capabilities.disks.some((d) => d.mount === '/'));
  assert.ok(warnings.every((w) => typeof w.probe === 'string' && typeof w.message === 'string'));
});

test('this machine, recorded: exact values from its /proc, /sys, df and ip', async () => {
  const { capabilities, warnings } = await runProbes(fixture('this-machine'));
  assert.deepEqual(warnings, []);
  assert.deepEqual(capabilities.os, {
    platform: 'linux', distro: 'Debian GNU/Linux 12 (bookworm)', release: '12', kernel: '6.18.44-fc-v595', hostname: 'vm',
    virtualization: 'container',
  });
  assert.deepEqual(capabilities.cpu, {
    model: 'AMD EPYC', vendor: 'AMD', arch: 'x64', physicalCores: 2, logicalCores: 2, flags: ['avx', 'avx2', 'fma', 'f16c'],
  });
  assert.deepEqual(capabilities.memory, {
    totalBytes: 24684096 * 1024, availableBytes: 24230576 * 1024, swapTotalBytes: 0, swapFreeBytes: 0,
  });
  assert.deepEqual(capabilities.disks, [
    { device: '/dev/vda', mount: '/', filesystem: 'ext4', totalBytes: 270553174016, freeBytes: 85554221056, rotational: true },
  ]);
  assert.deepEqual(capabilities.network[0], {
    name: 'eth0', addresses: ['192.0.2.2/24', 'fd00::2/64', 'fe80::fc:ff:fe00:1/64'], mac: '02:fc:00:00:00:01',
    wireless: false, up: true, mtu: 1400, virtual: false,
  });
  assert.deepEqual(capabilities.network.map((n) => [n.name, n.virtual]), [['eth0', false], ['ifb0', true], ['ifb1', true]]);
  assert.deepEqual(capabilities.gpus, []);
  assert.deepEqual(capabilities.accelerators, []);
  assert.deepEqual(capabilities.power, { onBattery: false });
});

test('disk helpers: partitions map to their block device, pseudo filesystems are skipped', () => {
  assert.deepEqual(
    ['/dev/sda1', '/dev/nvme0n1p2', '/dev/mmcblk0p2', '/dev/vda', '/dev/root', '/dev/mapper/vg-root', '/dev/loop3', 'overlay'].map(blockDeviceName),
    ['sda', 'nvme0n1', 'mmcblk0', 'vda', 'root', undefined, undefined, undefined],
  );
  assert.deepEqual(parseMounts('proc /proc proc rw 0 0\n/dev/sdb1 /mnt/my\\040disk ext4 rw 0 0\n/dev/sdb1 /mnt/my\\040disk ext4 rw 0 0\n'), [
    { device: '/dev/sdb1', mount: '/mnt/my disk', filesystem: 'ext4' },
  ]);
});

test('Raspberry Pi 4: aarch64 cpuinfo and the device-tree board string', async () => {
  const { capabilities } = await runProbes(fixture('raspberry-pi-4', 'linux', 'arm64'), [osProbe, cpuProbe]);
  assert.equal(capabilities.os.board, 'Raspberry Pi 4 Model B Rev 1.5');
  assert.equal(capabilities.os.virtualization, 'none');
  assert.deepEqual(capabilities.cpu, {
    model: 'ARM Cortex-A72', vendor: 'ARM', arch: 'arm64', physicalCores: 4, logicalCores: 4, flags: ['neon', 'asimd'],
  });
});

test('Apple M1: sysctl, vm_stat and system_profiler; the GPU shares unified memory', async () => {
  const env = fixture('apple-m1', 'darwin', 'arm64');
  const { capabilities, warnings } = await runProbes(env, [cpuProbe, memoryProbe, gpusProbe]);
  assert.deepEqual(capabilities.cpu, {
    model: 'Apple M1', vendor: 'Apple', arch: 'arm64', physicalCores: 8, logicalCores: 8, flags: ['neon', 'asimd'],
  });
  assert.deepEqual(capabilities.memory, {
    totalBytes: 17179869184, availableBytes: (3857 + 443760 + 1075) * 16384, swapTotalBytes: 0, swapFreeBytes: 0,
  });
  assert.deepEqual(capabilities.gpus, [{
    index: 0, vendor: 'apple', name: 'Apple M1', coreCount: 7, integrated: true, unifiedMemory: true, memoryTotalBytes: 17179869184,
  }]);
  assert.deepEqual(warnings, [{ probe: 'memory', message: 'vm.swapusage unavailable from sysctl; swap unknown' }]);
});

test('laptop on battery', async () => {
  const { capabilities } = await runProbes(fixture('laptop-on-battery'), [powerProbe]);
  assert.deepEqual(capabilities.power, { onBattery: true, batteryPct: 68, charging: false });
});

test('accelerators: Intel NPU, Coral on PCIe and USB, Jetson', async () => {
  const edge = await runProbes(fixture('edge-npu-coral'), [acceleratorsProbe]);
  assert.deepEqual(edge.capabilities.accelerators, [
    { type: 'npu', name: 'Intel NPU', path: '/dev/accel/accel0', vendor: 'intel', id: '8086:7d1d' },
    { type: 'tpu', name: 'Google Coral Edge TPU (PCIe)', path: '/dev/apex_0', vendor: 'google', id: '1ac1:089a' },
    { type: 'tpu', name: 'Google Coral Edge TPU (USB, firmware not loaded)', vendor: 'google', id: '1a6e:089a' },
  ]);
  const jetson = await runProbes(fixture('jetson-nano', 'linux', 'arm64'), [acceleratorsProbe, osProbe]);
  assert.deepEqual(jetson.capabilities.accelerators, [{ type: 'jetson', name: 'NVIDIA Jetson Nano Developer Kit', vendor: 'nvidia' }]);
  assert.equal(jetson.capabilities.os.board, 'NVIDIA Jetson Nano Developer Kit');
});

test('an empty machine: every probe warns or reports nothing, none throws, defaults stay neutral', async () => {
  const { capabilities, warnings } = await runProbes(fixture('does-not-exist'));
  assert.equal(capabilities.cpu.logicalCores, 0);
  assert.equal(capabilities.memory.totalBytes, 0);
  assert.deepEqual([capabilities.gpus, capabilities.disks, capabilities.accelerators], [[], [], []]);
  assert.deepEqual(new Set(warnings.map((w) => w.probe)), new Set(['os', 'cpu', 'memory', 'disks', 'network']));
});

test('runProbes turns a throwing probe into a warning and keeps the rest', async () => {
  const boom: Probe<'memory'> = { name: 'boom', key: 'memory', periodic: true, run: () => Promise.reject(new Error('kaput')) };
  const { capabilities, warnings } = await runProbes(fixture('this-machine'), [cpuProbe, boom]);
  assert.equal(capabilities.cpu.logicalCores, 2);
  assert.equal(capabilities.memory.totalBytes, 0);
  assert.deepEqual(warnings, [{ probe: 'boom', message: 'probe failed: kaput' }]);
});

test('cpuSpeedProbe does not run against a fixture; ALL_PROBES covers every section', async () => {
  assert.deepEqual(await cpuSpeedProbe.run(fixture('this-machine')), { warnings: [] });
  assert.deepEqual(new Set(ALL_PROBES.map((p) => p.key)), new Set(['os', 'cpu', 'memory', 'disks', 'network', 'gpus', 'accelerators', 'power']));
  assert.deepEqual(ALL_PROBES.filter((p) => p.periodic).map((p) => p.name), ['memory', 'disks', 'gpus', 'power']);
  assert.ok([networkProbe, disksProbe].every((p) => ALL_PROBES.includes(p)));
});

test('fixture exec replay: exact key, then longest prefix ending at space or =', async () => {
  const env = fixture('nvidia-h100-mig');
  assert.equal((await env.exec('nvidia-smi', ['-L']))?.stdout.split('\n')[0], 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-00000000-0000-0000-0000-000000000000)');
  assert.match((await env.exec('nvidia-smi', ['--query-gpu=index,name', '--format=csv']))!.stdout, /^timestamp, driver_version/);
  assert.equal(await env.exec('nvidia-smi', ['-Lx']), undefined);
  assert.equal(await env.exec('rocm-smi', []), undefined);
});

// ---- GPUs ------------------------------------------------------------------------

const MiB = 1024 * 1024;
const gpusOf = async (name: string) => runProbes(fixture(name), [gpusProbe]);

test('8x H100 box: nvidia-smi -L gives 8 GPUs and 56 MIG instances tied to their parents', async () => {
  const { capabilities, warnings } = await gpusOf('nvidia-8x-h100-mig');
  const physical = capabilities.gpus.filter((g) => !g.migParent);
  const mig = capabilities.gpus.filter((g) => g.migParent);
  assert.equal(physical.length, 8);
  assert.equal(mig.length, 56);
  assert.deepEqual(physical[0], { index: 0, vendor: 'nvidia', name: 'NVIDIA H100 80GB HBM3', uuid: 'GPU-63d1e50a-b952-d15c-0740-12bc14859142' });
  assert.deepEqual(physical.map((g) => g.index), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(mig[7], {
    index: 1,
    vendor: 'nvidia',
    name: 'NVIDIA H100 80GB HBM3 MIG 1g.10gb',
    uuid: 'MIG-9e577b56-8dad-58fa-9799-b034b7e42ec9',
    migParent: 'GPU-7e7d2a20-56b8-3220-e75c-1f3185864bda',
    migProfile: '1g.10gb',
  });
  assert.equal(mig.filter((g) => g.migParent === 'GPU-882ebfab-da98-c41e-357c-47272c0d560d').length, 7);
  // only -L was published for this box: the probe says what it could not learn
  assert.deepEqual(warnings, [{ probe: 'gpus', message: 'nvidia-smi --query-gpu not answered; GPU details unknown' }]);
});

test('8x A100 node: VRAM, use and load per GPU from the CSV header', async () => {
  const { capabilities, warnings } = await gpusOf('nvidia-8x-a100');
  assert.deepEqual(warnings, []);
  assert.equal(capabilities.gpus.length, 8);
  assert.ok(capabilities.gpus.every((g) => g.name === 'NVIDIA A100-SXM4-80GB' && g.memoryTotalBytes === 81920 * MiB));
  assert.deepEqual(capabilities.gpus.map((g) => g.memoryUsedBytes! / MiB), [66147, 77105, 50803, 57421, 76651, 0, 6313, 6247]);
  assert.deepEqual(capabilities.gpus.map((g) => g.utilizationPct), [99, 0, 87, 99, 0, 0, 39, 40]);
  assert.equal(capabilities.gpus[0]!.computeCapability, undefined); // not in the recorded query
});

test('H100 in MIG mode: parent from the 212-field CSV, four MIG devices from -L', async () => {
  const { capabilities, warnings } = await gpusOf('nvidia-h100-mig');
  assert.deepEqual(warnings, []);
  const [parent, ...mig] = capabilities.gpus;
  assert.deepEqual(parent, {
    index: 0,
    vendor: 'nvidia',
    name: 'NVIDIA H100 80GB HBM3',
    uuid: 'GPU-00000000-0000-0000-0000-000000000000',
    memoryTotalBytes: 81559 * MiB,
    memoryUsedBytes: 59 * MiB,
    computeCapability: '9.0',
    driver: '590.48.01',
    temperatureC: 42, // utilization.gpu is [N/A] in MIG mode: absent, not 0
    pciBusId: '00000000:00:09.0',
  });
  assert.deepEqual(mig.map((g) => [g.migProfile, g.uuid]), [
    ['3g.40gb', 'MIG-00000000-0000-0000-0000-000000000000'],
    ['2g.20gb', 'MIG-00000001-0000-0000-0000-000000000001'],
    ['1g.10gb', 'MIG-00000002-0000-0000-0000-000000000002'],
    ['1g.10gb', 'MIG-00000003-0000-0000-0000-000000000003'],
  ]);
  assert.ok(mig.every((g) => g.migParent === parent!.uuid && g.computeCapability === '9.0' && g.memoryTotalBytes === undefined));
});

test('consumer RTX 4080 SUPER', async () => {
  const { capabilities, warnings } = await gpusOf('nvidia-rtx4080-super');
  assert.deepEqual(warnings, []);
  assert.deepEqual(capabilities.gpus, [{
    index: 0,
    vendor: 'nvidia',
    name: 'NVIDIA GeForce RTX 4080 SUPER',
    uuid: 'GPU-00000000-0000-0000-0000-000000000000',
    memoryTotalBytes: 16376 * MiB,
    memoryUsedBytes: 596 * MiB,
    computeCapability: '8.9',
    driver: '595.71.05',
    utilizationPct: 0,
    temperatureC: 43,
    pciBusId: '00000000:01:00.0',
  }]);
});

test('workstation: a CSV without uuids is completed from nvidia-smi -L', async () => {
  const { capabilities } = await gpusOf('nvidia-workstation');
  assert.deepEqual(capabilities.gpus.map((g) => [g.index, g.name, g.computeCapability, g.driver, g.uuid]), [
    [0, 'NVIDIA TITAN V', '7.0', '570.86.15', 'GPU-b5169cef-2205-c30e-f2b3-220cfa14bafd'],
    [1, 'NVIDIA RTX 5880 Ada Generation', '8.9', '570.86.15', 'GPU-7518f6b0-991f-ce2b-3d37-c779130d3137'],
  ]);
});

test('nvidia-smi failing (driver/library mismatch, exit 18): warning, no GPUs, no throw', async () => {
  const { capabilities, warnings } = await gpusOf('nvidia-broken');
  assert.deepEqual(capabilities.gpus, []);
  assert.deepEqual(warnings, [{
    probe: 'gpus',
    message: 'nvidia-smi --query-gpu exited 18: Failed to initialize NVML: Driver/library version mismatch',
  }]);
});

test('nvidia-smi absent but the card is on the PCI bus: reported from DRM, with a warning', async () => {
  const { capabilities, warnings } = await gpusOf('nvidia-absent');
  assert.deepEqual(capabilities.gpus, [
    { index: 0, vendor: 'nvidia', name: 'NVIDIA GPU 10de:1201', pciId: '10de:1201', pciBusId: '0000:01:00.0', driver: 'nvidia' },
  ]);
  assert.deepEqual(warnings.map((w) => w.message), ['NVIDIA GPU present but nvidia-smi not found; memory and compute capability unknown']);
});

test('garbage from the vendor tools becomes warnings, never a throw or a number', () => {
  const w: string[] = [];
  assert.deepEqual(parseNvidiaCsv('NVIDIA-SMI has failed because it could not communicate with the driver', w), []);
  assert.deepEqual(parseNvidiaCsv('index, name, memory.total [MiB]\n0, NVIDIA X\n1, , 100 MiB\n', w), []);
  assert.deepEqual(parseNvidiaList('No devices were found\n'), { gpus: [], mig: [] });
  assert.deepEqual(parseRocmSmiJson('ERROR: GPU[0] : Unable to get GPU memory use.', w), []);
  assert.deepEqual(parseSpDisplays('{"SPDisplaysDataType": "text"}', undefined, w), []);
  assert.equal(w.length, 5);
  assert.match(w[1]!, /row has 2 fields, header has 3/);
  assert.match(w[2]!, /row without index\/name/);
});

test('AMD RX 7900 XT from rocm-smi --json', async () => {
  const { capabilities, warnings } = await gpusOf('amd-rx7900xt');
  assert.deepEqual(warnings, []);
  assert.deepEqual(capabilities.gpus, [{
    index: 0, vendor: 'amd', name: 'Radeon RX 7900 XT', memoryTotalBytes: 21458059264, memoryUsedBytes: 27856896,
    utilizationPct: 0, pciId: '1002:744c',
  }]);
});

test('AMD Radeon 780M APU: newer rocm-smi key names, temperature and PCI bus', async () => {
  const { capabilities, warnings } = await gpusOf('amd-radeon-780m');
  assert.deepEqual(warnings, []);
  assert.deepEqual(capabilities.gpus, [{
    index: 0, vendor: 'amd', name: 'Phoenix3', utilizationPct: 19, temperatureC: 31, pciBusId: '0000:C4:00.0', pciId: '1002:1900',
  }]);
});

test('Intel iGPU + Radeon Vega M seen through /sys/class/drm only', async () => {
  const { capabilities, warnings } = await gpusOf('intel-amd-drm');
  assert.deepEqual(capabilities.gpus, [
    { index: 0, vendor: 'intel', name: 'Intel GPU 8086:591b', pciId: '8086:591b', pciBusId: '0000:00:02.0', driver: 'i915', integrated: true },
    { index: 1, vendor: 'amd', name: 'AMD GPU 1002:694c', pciId: '1002:694c', pciBusId: '0000:01:00.0', driver: 'amdgpu' },
  ]);
  assert.deepEqual(warnings.map((w) => w.message), ['AMD GPU present but rocm-smi not found; reading amdgpu sysfs only']);
});

test('a card described by nvidia-smi is not reported again from DRM (PCI addresses compared normalised)', async () => {
  // logic test: the DRM uevent of nvidia-absent plus a one-row query answer at the same PCI address
  const uevent = await fixture('nvidia-absent').readFile('/sys/class/drm/card0/device/uevent');
  const env: ProbeEnv = {
    root: '/in-memory', platform: 'linux', arch: 'x64',
    readFile: async (p) => (p === '/sys/class/drm/card0/device/uevent' ? uevent : undefined),
    readDir: async (p) => (p === '/sys/class/drm' ? ['card0'] : undefined),
    exec: async (cmd, args) =>
      cmd === 'nvidia-smi' && args[0]?.startsWith('--query-gpu=')
        ? { code: 0, stdout: 'index, name, pci.bus_id\n0, NVIDIA GeForce GTX 560, 00000000:01:00.0\n', stderr: '' }
        : undefined,
  };
  const { capabilities, warnings } = await runProbes(env, [gpusProbe]);
  assert.deepEqual(warnings, []);
  assert.deepEqual(capabilities.gpus, [{ index: 0, vendor: 'nvidia', name: 'NVIDIA GeForce GTX 560', pciBusId: '00000000:01:00.0' }]);
});

test('an older driver that rejects compute_cap is asked again without it', async () => {
  // logic test; the rejection text is the one quoted in huggingface/candle#733 (driver 470.182.03), exit status not recorded there
  const asked: string[] = [];
  const env: ProbeEnv = {
    root: '/in-memory', platform: 'linux', arch: 'x64',
    readFile: async () => undefined,
    readDir: async () => undefined,
    exec: async (cmd, args) => {
      if (cmd !== 'nvidia-smi' || !args[0]?.startsWith('--query-gpu=')) return undefined;
      asked.push(args[0]);
      return args[0].includes('compute_cap')
        ? { code: 1, stdout: 'Field "compute_cap" is not a valid field to query.\n', stderr: '' }
        : { code: 0, stdout: 'index, name, driver_version\n0, NVIDIA GeForce RTX 2080, 470.182.03\n', stderr: '' };
    },
  };
  const { capabilities, warnings } = await runProbes(env, [gpusProbe]);
  assert.equal(asked.length, 2);
  assert.ok(!asked[1]!.includes('compute_cap'));
  assert.deepEqual(capabilities.gpus, [{ index: 0, vendor: 'nvidia', name: 'NVIDIA GeForce RTX 2080', driver: '470.182.03' }]);
  assert.deepEqual(warnings.map((w) => w.message), ['nvidia-smi does not know field compute_cap; retrying without it']);
});
