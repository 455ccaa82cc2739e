import type { AcceleratorCapabilities } from './capabilities.js';
import { clean, keyValues } from './parse.js';
import type { Probe, ProbeEnv } from './types.js';

/** kernel accel subsystem (/dev/accel/accelN): PCI vendor → what it is */
const ACCEL_VENDORS: Record<string, { name: string; vendor: string }> = {
  '8086': { name: 'Intel NPU', vendor: 'intel' },
  '1022': { name: 'AMD NPU', vendor: 'amd' },
};

/** Coral Edge TPU USB ids: before the runtime loads firmware it enumerates as Global Unichip, after as Google. */
const CORAL_USB: Record<string, string> = {
  '1a6e:089a': 'Google Coral Edge TPU (USB, firmware not loaded)',
  '18d1:9302': 'Google Coral Edge TPU (USB)',
};

async function accelDevices(env: ProbeEnv): Promise<AcceleratorCapabilities[]> {
  const names = new Set([...((await env.readDir('/sys/class/accel')) ?? []), ...((await env.readDir('/dev/accel')) ?? [])]);
  const out: AcceleratorCapabilities[] = [];
  for (const name of [...names].filter((n) => /^accel\d+$/.test(n)).sort()) {
    const dir = `/sys/class/accel/${name}/device`;
    const ue = keyValues((await env.readFile(`${dir}/uevent`)) ?? '', '=');
    const vendorId = clean(await env.readFile(`${dir}/vendor`))?.replace(/^0x/, '') ?? ue.get('PCI_ID')?.split(':')[0]?.toLowerCase();
    const deviceId = clean(await env.readFile(`${dir}/device`))?.replace(/^0x/, '') ?? ue.get('PCI_ID')?.split(':')[1]?.toLowerCase();
    const known = vendorId ? ACCEL_VENDORS[vendorId] : undefined;
    out.push({
      type: 'npu',
      name: known?.name ?? `accelerator ${name}${ue.get('DRIVER') ? ` (${ue.get('DRIVER')})` : ''}`,
      path: `/dev/accel/${name}`,
      vendor: known?.vendor,
      id: vendorId && deviceId ? `${vendorId}:${deviceId}` : undefined,
    });
  }
  return out;
}

async function coral(env: ProbeEnv): Promise<AcceleratorCapabilities[]> {
  const out: AcceleratorCapabilities[] = [];
  const apex = new Set([...((await env.readDir('/sys/class/apex')) ?? []), ...((await env.readDir('/dev')) ?? [])]);
  for (const name of [...apex].filter((n) => /^apex_\d+$/.test(n)).sort()) {
    out.push({ type: 'tpu', name: 'Google Coral Edge TPU (PCIe)', path: `/dev/${name}`, vendor: 'google', id: '1ac1:089a' });
  }
  for (const dev of (await env.readDir('/sys/bus/usb/devices')) ?? []) {
    const vid = clean(await env.readFile(`/sys/bus/usb/devices/${dev}/idVendor`));
    const pid = clean(await env.readFile(`/sys/bus/usb/devices/${dev}/idProduct`));
    const id = vid && pid ? `${vid}:${pid}`.toLowerCase() : undefined;
    if (id && CORAL_USB[id]) out.push({ type: 'tpu', name: CORAL_USB[id]!, vendor: 'google', id });
  }
  return out;
}

async function jetson(env: ProbeEnv): Promise<AcceleratorCapabilities[]> {
  const model = clean(await env.readFile('/proc/device-tree/model'));
  if (model && /jetson/i.test(model)) return [{ type: 'jetson', name: model, vendor: 'nvidia' }];
  const release = clean(await env.readFile('/etc/nv_tegra_release'));
  if (release) {
    const l4t = release.match(/^# (R\d+) \(release\), REVISION: ([\d.]+)/);
    return [{ type: 'jetson', name: l4t ? `NVIDIA Jetson (L4T ${l4t[1]}.${l4t[2]})` : 'NVIDIA Jetson', vendor: 'nvidia' }];
  }
  return [];
}

export const acceleratorsProbe: Probe<'accelerators'> = {
  name: 'accelerators',
  key: 'accelerators',
  periodic: false,
  async run(env) {
    if (env.platform !== 'linux') return { value: [], warnings: [] };
    return { value: [...(await accelDevices(env)), ...(await coral(env)), ...(await jetson(env))], warnings: [] };
  },
};
