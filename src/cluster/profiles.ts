/**
 * Device profiles: cluster-wide presets. Everyone with `devices:read` reads them; only holders of
 * `devices:write` (admins) create, replace or delete them. See ADR 009.
 */
import { NexusError } from '../errors/catalogue.js';
import type { Profile, ProfileCreate, ProfileSpec } from '../resources/profile.js';
import { createJson, getJson, listJson, updateJson } from '../store/json.js';
import { keys } from '../store/keys.js';
import type { Clock, StateStore } from '../store/types.js';
import { authorize, type Principal } from '../tenancy/roles.js';
import { applyProfile, isValidTimeZone, type OfferDevice, type OfferedCapacity, type OfferOptions } from './offer.js';

/** Checks what the schema cannot: a known time zone, windows that do not start at 24:00. */
function validateSpec(spec: ProfileSpec): void {
  if (spec.timeZone !== undefined && !isValidTimeZone(spec.timeZone)) {
    throw new NexusError('NEXUS_E_VALIDATION', { field: 'timeZone', detail: `"${spec.timeZone}" is not a known IANA time zone (e.g. UTC, Europe/Paris, America/New_York)` });
  }
  (spec.windows ?? []).forEach((w, i) => {
    if (w.start === '24:00') throw new NexusError('NEXUS_E_VALIDATION', { field: `windows.${i}.start`, detail: 'a window cannot start at 24:00; use 00:00' });
  });
}

function fromSpec(name: string, spec: ProfileSpec, createdAt: string, updatedAt: string): Profile {
  return {
    name,
    labels: spec.labels ?? {},
    reservedCpuMillis: spec.reservedCpuMillis ?? 0,
    reservedMemoryBytes: spec.reservedMemoryBytes ?? 0,
    notOnBattery: spec.notOnBattery ?? false,
    windows: spec.windows ?? [],
    ...(spec.timeZone !== undefined ? { timeZone: spec.timeZone } : {}),
    ...(spec.maxTasks !== undefined ? { maxTasks: spec.maxTasks } : {}),
    ...(spec.tier !== undefined ? { tier: spec.tier } : {}),
    createdAt,
    updatedAt,
  };
}

export class ProfileService {
  constructor(private readonly store: StateStore, private readonly clock: Clock) {}

  async list(by: Principal): Promise<Profile[]> {
    authorize(by, 'devices:read');
    return listJson<Profile>(this.store, keys.profiles());
  }

  async get(by: Principal, name: string): Promise<Profile> {
    authorize(by, 'devices:read');
    const p = await this.find(name);
    if (!p) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'profile', id: name });
    return p;
  }

  /** For in-server callers (scheduler, devices API) that have already authorized: the profile or undefined. */
  find(name: string): Promise<Profile | undefined> {
    return getJson<Profile>(this.store, keys.profile(name));
  }

  async create(by: Principal, req: ProfileCreate): Promise<Profile> {
    authorize(by, 'devices:write');
    const { name, ...spec } = req;
    validateSpec(spec);
    const now = new Date(this.clock()).toISOString();
    const profile = fromSpec(name, spec, now, now);
    await createJson(this.store, keys.profile(name), profile, { kind: 'profile', id: name });
    return profile;
  }

  /** PUT: replaces the whole profile (omitted fields take their defaults); keeps `createdAt`. */
  async replace(by: Principal, name: string, spec: ProfileSpec): Promise<Profile> {
    authorize(by, 'devices:write');
    validateSpec(spec);
    const now = new Date(this.clock()).toISOString();
    return updateJson<Profile>(this.store, keys.profile(name), (prev) => fromSpec(name, spec, prev.createdAt, now), { kind: 'profile', id: name });
  }

  /**
   * Deletes a profile no device uses. A device uses a profile when its document's `profile` field
   * names it (set by POST /v1/devices/:id/profile); such a delete is NEXUS_E_IN_USE.
   */
  async delete(by: Principal, name: string): Promise<void> {
    authorize(by, 'devices:write');
    const key = keys.profile(name);
    const kv = await this.store.get(key);
    if (!kv) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'profile', id: name });
    const users = (await listJson<{ id: string; profile?: string | null }>(this.store, keys.devices())).filter((d) => d.profile === name).map((d) => d.id);
    if (users.length > 0) {
      const shown = users.slice(0, 5).join(', ') + (users.length > 5 ? ` and ${users.length - 5} more` : '');
      throw new NexusError('NEXUS_E_IN_USE', { kind: 'profile', id: name, detail: `device(s) ${shown} use it; assign them another profile (or none) first` });
    }
    // Compare on the revision we checked, so a concurrent replace is not silently deleted.
    const r = await this.store.txn({ compare: [{ key, target: 'modRevision', op: '=', value: kv.modRevision }], success: [{ type: 'delete', key }] });
    if (!r.succeeded) throw new NexusError('NEXUS_E_CONFLICT', { detail: `profile ${name} changed while it was being deleted; retry` });
  }

  /**
   * What `device` offers now: its profile (by name; null/undefined = none) applied with
   * `applyProfile`. A device naming a profile that no longer exists offers nothing.
   */
  async offer(device: OfferDevice & { profile?: string | null }, now: number = this.clock(), opts: OfferOptions = {}): Promise<OfferedCapacity> {
    if (!device.profile) return applyProfile(device, null, now, opts);
    const profile = await this.find(device.profile);
    if (!profile) {
      const none = applyProfile(device, null, now, opts);
      return { ...none, profile: device.profile, allowed: false, reasons: [`profile ${device.profile} does not exist`] };
    }
    return applyProfile(device, profile, now, opts);
  }
}
