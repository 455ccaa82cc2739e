/**
 * The Scheduler's view: devices (their profile applied), bookings, tasks by state and by device,
 * tenant usage and quotas, read from the store by range and kept current by watches. Every record
 * keeps the highest store revision applied to it (and the modRevision commits compare), so events
 * no newer than that, the scheduler's own commits coming back among them, change nothing.
 */
import type { Device } from '../resources/device.js';
import type { Task } from '../resources/job.js';
import type { Profile } from '../resources/profile.js';
import type { Quotas, Tenant } from '../resources/tenant.js';
import { keys } from '../store/keys.js';
import type { StateStore, Watch, WatchEvent } from '../store/types.js';
import { allocatedFromDoc, emptyAllocated, type AllocDoc } from './allocations.js';
import { toCandidate, type Allocated, type CandidateDevice, type ProfileRules } from './candidate.js';
import { schedKeys } from './keys.js';
import type { Planner } from './placement.js';
import { ZERO_USAGE, type Usage, type UsageDoc } from './quota.js';
import type { TaskRequest } from './request.js';
import type { SchedulerOptions } from './scheduler.js';
import { HOLDS_RESOURCES } from './task-state.js';

export interface Versioned {
  key: string;
  /** modRevision of the key in the store as we know it (0 = absent): what commits compare. */
  rev: number;
  /** Highest store revision applied to this record (older events are ignored). */
  seen: number;
}

export interface TaskRec extends Versioned {
  task: Task;
  req: TaskRequest | undefined;
  created: number;
  notBefore: number;
}

export interface AllocRec extends Versioned {
  deviceId: string;
  a: Allocated;
}

export interface UsageRec extends Versioned {
  tenant: string;
  u: Usage;
}

export interface DeviceRec extends CandidateDevice {
  seen: number;
  /** The device document as stored (re-derived when its profile changes). */
  doc: Device;
  alloc: AllocRec;
  pos: number;
}

const PREFIX = {
  devices: keys.devices(),
  tasks: schedKeys.tasks(),
  allocs: schedKeys.allocs(),
  usages: schedKeys.usages(),
  tenants: keys.tenants(),
  profiles: schedKeys.profiles(),
};
// Profiles before devices, so a loaded device finds its profile.
const WATCHED = [PREFIX.profiles, PREFIX.devices, PREFIX.tasks, PREFIX.allocs, PREFIX.usages, PREFIX.tenants];

/** The server's own time zone: windows of a profile without `timeZone` are read in it (ADR 009). */
const LOCAL_TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

type DeviceDoc = Device & { profile?: unknown; utilization?: { battery?: { onBattery?: boolean } } };

/** What the view needs of the Scheduler that owns it. */
export interface ViewOwner {
  /** Called when watch events arrive or a watch breaks (wakes the `start()` loop). */
  wake(): void;
  /** True once `stop()` was called: a watch closed then needs no resync. */
  stopped(): boolean;
}

/** The in-memory view of one Scheduler (see the file's comment). */
export class SchedulerView {
  readonly tasks = new Map<string, TaskRec>();
  readonly pending = new Set<TaskRec>();
  readonly holding = new Map<string, Map<string, TaskRec>>();
  private readonly devices = new Map<string, DeviceRec>();
  readonly deviceList: DeviceRec[] = [];
  private readonly allocs = new Map<string, AllocRec>();
  private readonly usages = new Map<string, UsageRec>();
  readonly quotas = new Map<string, { quotas: Quotas; seen: number }>();
  private readonly profiles = new Map<string, { profile: Profile; seen: number }>();

  /** A watch broke (compacted or closed under us): read everything again before the next pass. */
  resync = false;
  /** A pass is running: watch events wait until it asks for them (see `applyInbox`). */
  inPass = false;
  /** Cache of minHoldingPriority(); reset whenever the view changes outside a pass's own bookings. */
  minHolding: number | undefined;
  private watches: Watch[] = [];
  private inbox: WatchEvent[] = [];
  private readonly store: StateStore;

  constructor(
    private readonly options: SchedulerOptions,
    private readonly planner: Planner,
    private readonly owner: ViewOwner,
  ) {
    this.store = options.store;
  }

  /** Drops everything (a later `load` reads afresh). */
  clear(): void {
    this.tasks.clear();
    this.pending.clear();
    this.holding.clear();
    this.devices.clear();
    this.deviceList.length = 0;
    this.allocs.clear();
    this.usages.clear();
    this.quotas.clear();
    this.profiles.clear();
    this.inbox = [];
    this.planner.scoreCtx.maxSpeedScore = 0;
  }

  /** Reads everything from the store by range, then watches it from the revision read. */
  async load(): Promise<void> {
    this.clear();
    this.resync = false;
    const from = (await this.store.revision()) + 1;
    for (const prefix of WATCHED) {
      let after: string | undefined;
      do {
        const page = await this.store.range(prefix, { limit: 5000, ...(after ? { after } : {}) });
        for (const kv of page.items) this.apply(kv.key, kv.value, kv.modRevision, kv.modRevision);
        after = page.next;
      } while (after);
    }
    for (const prefix of WATCHED) {
      const w = this.store.watch(prefix, { fromRevision: from });
      this.watches.push(w);
      void (async () => {
        try {
          for await (const ev of w) {
            this.inbox.push(ev);
            this.owner.wake();
          }
        } catch {
          // Compacted or broken watch: read everything again before the next pass.
          if (!this.owner.stopped()) {
            this.resync = true;
            this.owner.wake();
          }
        }
      })();
    }
  }

  /** Closes the watches (the view stops following the store until the next `load`). */
  closeWatches(): void {
    for (const w of this.watches) w.close();
    this.watches = [];
  }

  /**
   * Applies watched events; true when any changed the view. Never while a pass runs (unless the
   * pass itself asks, between batches): an event must not land on a batch's tentative bookings.
   */
  applyInbox(fromPass = false): boolean {
    if (this.inbox.length === 0 || (this.inPass && !fromPass)) return false;
    const events = this.inbox;
    this.inbox = [];
    let changed = false;
    for (const ev of events) {
      const put = ev.type === 'put';
      if (this.apply(ev.key, put ? ev.value : undefined, ev.revision, put ? ev.revision : 0)) changed = true;
    }
    return changed;
  }

  /** Applies one key's state at store revision `seen` (value undefined = deleted); false if stale. */
  apply(key: string, value: string | undefined, seen: number, modRevision: number): boolean {
    if (key.startsWith(PREFIX.tasks)) return this.applyTask(key, value, seen, modRevision);
    if (key.startsWith(PREFIX.allocs)) return this.applyAlloc(key, value, seen, modRevision);
    if (key.startsWith(PREFIX.devices)) return this.applyDevice(key, value, seen);
    if (key.startsWith(PREFIX.usages)) return this.applyUsage(key, value, seen, modRevision);
    if (key.startsWith(PREFIX.tenants)) return this.applyTenant(key, value, seen);
    if (key.startsWith(PREFIX.profiles)) return this.applyProfile(key, value, seen);
    return false;
  }

  private index(rec: TaskRec): void {
    const t = rec.task;
    this.minHolding = undefined;
    if (t.state === 'pending') this.pending.add(rec);
    else if (HOLDS_RESOURCES.has(t.state) && t.deviceId) {
      let m = this.holding.get(t.deviceId);
      if (!m) this.holding.set(t.deviceId, (m = new Map()));
      m.set(rec.key, rec);
    }
  }

  private unindex(rec: TaskRec): void {
    const t = rec.task;
    if (t.state === 'pending') this.pending.delete(rec);
    else if (t.deviceId) this.holding.get(t.deviceId)?.delete(rec.key);
  }

  /** The lowest priority of any task holding resources (101 when none): preemption is pointless below it + 10. */
  minHoldingPriority(): number {
    if (this.minHolding === undefined) {
      let min = 101;
      for (const m of this.holding.values()) for (const rec of m.values()) if (rec.task.priority < min) min = rec.task.priority;
      this.minHolding = min;
    }
    return this.minHolding;
  }

  holdingOf(deviceId: string): Map<string, TaskRec> {
    let m = this.holding.get(deviceId);
    if (!m) this.holding.set(deviceId, (m = new Map()));
    return m;
  }

  private applyTask(key: string, value: string | undefined, seen: number, modRevision: number): boolean {
    const rec = this.tasks.get(key);
    if (rec && rec.seen >= seen) return false;
    if (value === undefined) {
      if (!rec) return false;
      this.unindex(rec);
      this.tasks.delete(key);
      return true;
    }
    const task = JSON.parse(value) as Task;
    const created = Date.parse(task.createdAt);
    const notBefore = task.notBefore ? Date.parse(task.notBefore) : 0;
    if (rec) {
      this.unindex(rec);
      rec.task = task;
      rec.req = undefined;
      rec.rev = modRevision;
      rec.seen = seen;
      rec.created = created;
      rec.notBefore = notBefore;
      this.index(rec);
    } else {
      const r: TaskRec = { key, rev: modRevision, seen, task, req: undefined, created, notBefore };
      this.tasks.set(key, r);
      this.index(r);
    }
    return true;
  }

  private allocRec(deviceId: string): AllocRec {
    let a = this.allocs.get(deviceId);
    if (!a) {
      a = { key: schedKeys.alloc(deviceId), rev: 0, seen: 0, deviceId, a: emptyAllocated() };
      this.allocs.set(deviceId, a);
    }
    return a;
  }

  private applyAlloc(key: string, value: string | undefined, seen: number, modRevision: number): boolean {
    const rec = this.allocRec(key.slice(PREFIX.allocs.length));
    if (rec.seen >= seen) return false;
    allocatedFromDoc(value === undefined ? undefined : (JSON.parse(value) as AllocDoc), rec.a);
    rec.rev = modRevision;
    rec.seen = seen;
    return true;
  }

  usageRec(tenant: string): UsageRec {
    let u = this.usages.get(tenant);
    if (!u) {
      u = { key: schedKeys.usage(tenant), rev: 0, seen: 0, tenant, u: { ...ZERO_USAGE } };
      this.usages.set(tenant, u);
    }
    return u;
  }

  private applyUsage(key: string, value: string | undefined, seen: number, modRevision: number): boolean {
    const rec = this.usageRec(key.slice(PREFIX.usages.length));
    if (rec.seen >= seen) return false;
    const doc = value === undefined ? undefined : (JSON.parse(value) as UsageDoc);
    rec.u = { cpuMillis: doc?.cpuMillis ?? 0, memoryBytes: doc?.memoryBytes ?? 0, gpus: doc?.gpus ?? 0, tasks: doc?.tasks ?? 0 };
    rec.rev = modRevision;
    rec.seen = seen;
    return true;
  }

  private applyTenant(key: string, value: string | undefined, seen: number): boolean {
    const name = key.slice(PREFIX.tenants.length);
    const prev = this.quotas.get(name);
    if (prev && prev.seen >= seen) return false;
    if (value === undefined) this.quotas.delete(name);
    else this.quotas.set(name, { quotas: (JSON.parse(value) as Tenant).quotas ?? {}, seen });
    return true;
  }

  private applyDevice(key: string, value: string | undefined, seen: number): boolean {
    const id = key.slice(PREFIX.devices.length);
    const rec = this.devices.get(id);
    if (rec && rec.seen >= seen) return false;
    if (value === undefined) {
      if (!rec) return false;
      const last = this.deviceList.pop()!;
      if (last !== rec) {
        this.deviceList[rec.pos] = last;
        last.pos = rec.pos;
      }
      this.devices.delete(id);
      this.planner.devicesChanged();
      return true;
    }
    const d = JSON.parse(value) as DeviceDoc;
    const view = this.candidateOf(d);
    const speed = view.capabilities.cpu.speedScore ?? 0;
    if (speed > this.planner.scoreCtx.maxSpeedScore) this.planner.scoreCtx.maxSpeedScore = speed;
    if (rec) {
      const { allocated: _a, ...fields } = view;
      Object.assign(rec, fields);
      rec.seen = seen;
      rec.doc = d;
    } else {
      const alloc = this.allocRec(id);
      const r = Object.assign(view, { seen, doc: d, alloc, pos: this.deviceList.length, allocated: alloc.a }) as DeviceRec;
      this.devices.set(id, r);
      this.deviceList.push(r);
    }
    this.planner.devicesChanged();
    return true;
  }

  /** The candidate view of a device document, with its profile applied. */
  private candidateOf(d: DeviceDoc): CandidateDevice {
    let profile: ProfileRules | undefined;
    let doc: Device = d;
    if (this.options.profileOf) {
      profile = this.options.profileOf(d);
    } else if (typeof d.profile === 'string' && d.profile !== '') {
      const p = this.profiles.get(d.profile)?.profile;
      if (!p) {
        profile = { missing: true };
      } else {
        profile = {
          reservedCpuMillis: p.reservedCpuMillis ?? 0,
          reservedMemoryBytes: p.reservedMemoryBytes ?? 0,
          notOnBattery: p.notOnBattery === true,
          windows: p.windows ?? [],
          timeZone: p.timeZone ?? LOCAL_TIME_ZONE,
          ...(p.maxTasks !== undefined ? { maxTasks: p.maxTasks } : {}),
        };
        doc = { ...d, labels: { ...p.labels, ...d.labels }, tier: p.tier ?? d.tier };
      }
    } else if (d.profile && typeof d.profile === 'object') {
      profile = d.profile as ProfileRules; // rules embedded in the document (simulations, tests)
    }
    const view = toCandidate(doc, undefined as unknown as Allocated, profile);
    // The live battery state from the last heartbeat wins over the probed one.
    const live = d.utilization?.battery?.onBattery;
    if (typeof live === 'boolean') view.power = { onBattery: live };
    return view;
  }

  private applyProfile(key: string, value: string | undefined, seen: number): boolean {
    const name = key.slice(PREFIX.profiles.length);
    const prev = this.profiles.get(name);
    if (prev && prev.seen >= seen) return false;
    if (value === undefined) this.profiles.delete(name);
    else this.profiles.set(name, { profile: JSON.parse(value) as Profile, seen });
    // Re-derive the devices that name it.
    for (const rec of this.deviceList) {
      if ((rec.doc as DeviceDoc).profile !== name) continue;
      const { allocated: _a, ...fields } = this.candidateOf(rec.doc as DeviceDoc);
      Object.assign(rec, fields);
    }
    this.planner.devicesChanged();
    return true;
  }
}
