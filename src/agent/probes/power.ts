import type { PowerCapabilities } from './capabilities.js';
import { clean, num } from './parse.js';
import type { Probe, ProbeEnv } from './types.js';

interface Supply { name: string; type?: string; scope?: string; status?: string; capacity?: number; online?: number }

async function supplies(env: ProbeEnv): Promise<Supply[]> {
  const out: Supply[] = [];
  for (const name of (await env.readDir('/sys/class/power_supply')) ?? []) {
    const attr = (a: string) => env.readFile(`/sys/class/power_supply/${name}/${a}`);
    out.push({
      name,
      type: clean(await attr('type')),
      scope: clean(await attr('scope')),
      status: clean(await attr('status')),
      capacity: num(await attr('capacity')),
      online: num(await attr('online')),
    });
  }
  return out;
}

/** From /sys/class/power_supply: system batteries (scope Device = mouse, headset ... ignored) and mains/USB adapters. */
export function summarizePower(all: Supply[]): PowerCapabilities {
  const batteries = all.filter((s) => s.type === 'Battery' && s.scope !== 'Device');
  const adapters = all.filter((s) => (s.type === 'Mains' || s.type?.startsWith('USB')) && s.online !== undefined && s.scope !== 'Device');
  const acOnline = adapters.length ? adapters.some((a) => a.online === 1) : undefined;
  if (batteries.length === 0) return { onBattery: false, acOnline };
  const pcts = batteries.map((b) => b.capacity).filter((c): c is number => c !== undefined);
  const discharging = batteries.some((b) => b.status === 'Discharging');
  return {
    onBattery: acOnline === undefined ? discharging : !acOnline,
    batteryPct: pcts.length ? Math.round(pcts.reduce((a, b) => a + b, 0) / pcts.length) : undefined,
    charging: batteries.some((b) => b.status === 'Charging'),
    acOnline,
  };
}

/** `pmset -g batt`: "Now drawing from 'Battery Power'" / " -InternalBattery-0 (id=..)\t57%; discharging; ..." */
export function parsePmset(text: string): PowerCapabilities | undefined {
  const source = text.match(/Now drawing from '([^']+)'/)?.[1];
  if (!source) return undefined;
  const batt = text.match(/InternalBattery[^\t]*\t(\d+)%;\s*([^;]+);/);
  return {
    onBattery: source === 'Battery Power',
    acOnline: source === 'AC Power',
    batteryPct: num(batt?.[1]),
    charging: batt ? batt[2]!.trim() === 'charging' : undefined,
  };
}

export const powerProbe: Probe<'power'> = {
  name: 'power',
  key: 'power',
  periodic: true,
  async run(env) {
    if (env.platform === 'darwin') {
      const res = await env.exec('pmset', ['-g', 'batt']);
      const parsed = res ? parsePmset(res.stdout) : undefined;
      return parsed ? { value: parsed, warnings: [] } : { warnings: [res ? 'pmset -g batt output not understood' : 'pmset not found'] };
    }
    if (env.platform !== 'linux') return { warnings: [`platform ${env.platform}: power not probed`] };
    return { value: summarizePower(await supplies(env)), warnings: [] };
  },
};
