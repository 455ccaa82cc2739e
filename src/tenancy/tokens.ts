/** Tokens: a public accessor id, a secret kept only as a hash, one role, one tenant. */
import * as nodeCrypto from 'node:crypto';
import { NexusError } from '../errors/catalogue.js';
import type { Role, Token, TokenCreate, TokenRecord } from '../resources/token.js';
import { createJson, getJson, listJson, updateJson } from '../store/json.js';
import { keys } from '../store/keys.js';
import type { Clock, StateStore, Watch } from '../store/types.js';
import { authorize, authorizeMint, type Principal } from './roles.js';
import { formatJoinToken, parseAnyToken } from './join-token.js';
import { formatToken, hashSecret, newAccessorId, newSecret, secretMatches } from './secrets.js';
import { DEFAULT_TENANT, type TenantService } from './tenants.js';

/** The in-process principal used for bootstrap; never reachable over the API. */
export const SYSTEM: Principal = { tokenId: 'system', role: 'admin', tenant: DEFAULT_TENANT };

function publicView(rec: TokenRecord): Token {
  const { secretHash: _hidden, ...pub } = rec;
  return pub;
}

export interface TokenServiceOptions {
  /**
   * SHA-256 pin of the cluster CA, on a server with TLS. `agent` tokens are then handed out as
   * join tokens (`NX1<pin>::<id>.<secret>`, see join-token.ts). @default none (plain `nxt_` form)
   */
  joinPin?: string;
  /**
   * How long a verified token is trusted without reading the store again, in ms; 0 turns the
   * cache off. Revocation does not wait for it: see `verify()`. @default 10000
   */
  verifiedTtlMs?: number;
}

interface Verified {
  principal: Principal;
  tokenId: string;
  /** `expiresAt` of the record, ms (checked on every hit). */
  expiresAt: number | undefined;
  /** performance.now() when verified against the store. */
  at: number;
}

/** Most verified tokens kept; past it the cache starts over (10,000 devices need 10,000). */
const VERIFIED_MAX = 100_000;
/** `crypto.hash` (Node ≥ 20.12) is a one-shot digest several times cheaper than createHash. */
const oneShot = (nodeCrypto as unknown as { hash?: (algorithm: string, data: string, encoding: 'base64') => string }).hash;
const sha256 = oneShot ? (s: string): string => oneShot('sha256', s, 'base64') : (s: string): string => nodeCrypto.createHash('sha256').update(s).digest('base64');

export class TokenService {
  /** Verified bearers by SHA-256 of the whole bearer string (never the secret itself). */
  private readonly verified = new Map<string, Verified>();
  /** Cache keys of each token id, to drop them when the token changes. */
  private readonly verifiedKeys = new Map<string, Set<string>>();
  /** Bumped whenever a token changes, so a verification that raced with a change is not cached. */
  private changes = 0;
  private watch: Watch | undefined;
  private watchStarting = false;
  private watchTriedAt = -Infinity;
  private readonly verifiedTtlMs: number;

  constructor(
    private readonly store: StateStore,
    private readonly tenants: TenantService,
    private readonly clock: Clock,
    private readonly options: TokenServiceOptions = {},
  ) {
    this.verifiedTtlMs = options.verifiedTtlMs ?? 10_000;
  }

  /** Mints a token; the secret is returned once and never stored. `agent` tokens are join tokens. */
  async create(by: Principal, req: TokenCreate): Promise<{ token: string; item: Token }> {
    const tenant = req.tenant ?? by.tenant;
    authorizeMint(by, req.role, tenant);
    if (!(await this.tenants.exists(tenant))) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'tenant', id: tenant }, { field: 'tenant' });
    const { id, secret, rec } = this.record(by, req.role, tenant, req.name, req.ttlSeconds);
    await createJson(this.store, keys.token(id), rec, { kind: 'token', id });
    const pin = this.options.joinPin;
    return { token: req.role === 'agent' && pin ? formatJoinToken(pin, id, secret) : formatToken(id, secret), item: publicView(rec) };
  }

  /**
   * Mints the credential of one joined device: an `agent` token bound to `deviceId`, so it can
   * act for that device only. Called by the join handler, never directly over the API.
   */
  async createDeviceCredential(by: Principal, deviceId: string, name: string): Promise<{ token: string; item: Token }> {
    const { id, secret, rec } = this.record(by, 'agent', by.tenant, name, undefined, deviceId);
    await createJson(this.store, keys.token(id), rec, { kind: 'token', id });
    return { token: formatToken(id, secret), item: publicView(rec) };
  }

  private record(by: Principal, role: Role, tenant: string, name: string | undefined, ttlSeconds: number | undefined, deviceId?: string): { id: string; secret: string; rec: TokenRecord } {
    const id = newAccessorId();
    const secret = newSecret();
    const now = this.clock();
    const rec: TokenRecord = {
      id,
      role,
      tenant,
      ...(name ? { name } : {}),
      ...(deviceId ? { deviceId } : {}),
      createdAt: new Date(now).toISOString(),
      createdBy: by.tokenId,
      ...(ttlSeconds ? { expiresAt: new Date(now + ttlSeconds * 1000).toISOString() } : {}),
      secretHash: hashSecret(secret),
    };
    return { id, secret, rec };
  }

  /** Tokens visible to `by`: all for admins, its own tenant's for others. */
  async list(by: Principal, tenant?: string): Promise<Token[]> {
    const scope = tenant ?? (by.role === 'admin' ? undefined : by.tenant);
    authorize(by, 'tokens:read', scope);
    const all = await listJson<TokenRecord>(this.store, keys.tokens());
    return all.filter((t) => scope === undefined || t.tenant === scope).map(publicView);
  }

  /** Active (unrevoked, unexpired) tokens of a tenant. */
  async countActive(tenant: string): Promise<number> {
    const now = this.clock();
    const all = await listJson<TokenRecord>(this.store, keys.tokens());
    return all.filter((t) => t.tenant === tenant && !t.revokedAt && !(t.expiresAt && Date.parse(t.expiresAt) <= now)).length;
  }

  async revoke(by: Principal, id: string): Promise<Token> {
    const rec = await getJson<TokenRecord>(this.store, keys.token(id));
    if (!rec) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'token', id });
    // Revoking needs the right to mint such a token: a member cannot revoke an admin.
    authorizeMint(by, rec.role, rec.tenant);
    return this.revokeUnchecked(id);
  }

  /** Revokes without an authorization check: for services that checked already (device revoke). */
  async revokeUnchecked(id: string): Promise<Token> {
    const at = new Date(this.clock()).toISOString();
    const updated = await updateJson<TokenRecord>(this.store, keys.token(id), (t) => (t.revokedAt ? undefined : { ...t, revokedAt: at }), { kind: 'token', id });
    this.forgetVerified(id); // at once on this server; other servers through their watch
    return publicView(updated);
  }

  /**
   * Resolves a bearer token (`nxt_<id>.<secret>`, or a join token `NX1<pin>::<id>.<secret>`) to its
   * principal, or throws NEXUS_E_BAD_TOKEN (NEXUS_E_DEVICE_REVOKED for a revoked device credential).
   *
   * Every request is authenticated, agents' heartbeats included (10,000/s at 10,000 devices), so a
   * verified bearer is remembered: a hit costs one SHA-256 of the bearer and a map lookup instead
   * of a store read, a JSON parse and the secret's hash. The cache is keyed by that hash, holds no
   * secret, and keeps nothing that failed. Bounds on a stale answer:
   *  - revocation (or any change to the token) on this server drops the entry before `revoke`
   *    returns; on other servers a watch on the tokens drops it when the change arrives;
   *  - while that watch is not running (not yet started, broken) nothing new is cached;
   *  - whatever happens, an entry is trusted for `verifiedTtlMs` (10 s) at most;
   *  - expiry is checked on every hit.
   */
  async verify(bearer: string): Promise<Principal> {
    const cacheKey = this.verifiedTtlMs > 0 ? sha256(bearer) : undefined;
    if (cacheKey !== undefined) {
      const hit = this.cachedPrincipal(cacheKey);
      if (hit) return hit;
      this.ensureWatch();
    }
    const parsed = parseAnyToken(bearer);
    if (!parsed) throw new NexusError('NEXUS_E_BAD_TOKEN', { detail: 'it is not a NEXUS token (expected nxt_<id>.<secret> or NX1<pin>::<id>.<secret>)' });
    if (parsed.pin && this.options.joinPin && parsed.pin !== this.options.joinPin) {
      throw new NexusError('NEXUS_E_BAD_TOKEN', { detail: `it is a join token of another cluster (CA pin ${parsed.pin.slice(0, 12)}…)` });
    }
    const changes = this.changes;
    const watching = this.watch;
    const rec = await getJson<TokenRecord>(this.store, keys.token(parsed.id));
    if (!rec || !secretMatches(parsed.secret, rec.secretHash)) throw new NexusError('NEXUS_E_BAD_TOKEN', { detail: 'unknown token or wrong secret' });
    if (rec.revokedAt && rec.deviceId) throw new NexusError('NEXUS_E_DEVICE_REVOKED', { id: rec.deviceId, at: rec.revokedAt });
    if (rec.revokedAt) throw new NexusError('NEXUS_E_BAD_TOKEN', { detail: `token ${rec.id} was revoked at ${rec.revokedAt}` });
    if (rec.expiresAt && Date.parse(rec.expiresAt) <= this.clock()) throw new NexusError('NEXUS_E_BAD_TOKEN', { detail: `token ${rec.id} expired at ${rec.expiresAt}` });
    const principal: Principal = { tokenId: rec.id, role: rec.role as Role, tenant: rec.tenant, ...(rec.deviceId ? { deviceId: rec.deviceId } : {}) };
    if (cacheKey !== undefined && watching && watching === this.watch && changes === this.changes) this.remember(cacheKey, rec, principal);
    return principal;
  }

  /**
   * The principal of a bearer verified a moment ago, without waiting (the request path's fast
   * path), or undefined: then `verify()` it.
   */
  verifiedPrincipal(bearer: string): Principal | undefined {
    return this.verifiedTtlMs > 0 ? this.cachedPrincipal(sha256(bearer)) : undefined;
  }

  /** A hit is this very bearer string, verified (its form and pin included) within the TTL. */
  private cachedPrincipal(cacheKey: string): Principal | undefined {
    const hit = this.verified.get(cacheKey);
    if (!hit) return undefined;
    if (performance.now() - hit.at < this.verifiedTtlMs && (hit.expiresAt === undefined || hit.expiresAt > this.clock())) return hit.principal;
    this.dropVerified(cacheKey, hit.tokenId);
    return undefined;
  }

  private remember(cacheKey: string, rec: TokenRecord, principal: Principal): void {
    if (this.verified.size >= VERIFIED_MAX) this.clearVerified();
    this.verified.set(cacheKey, { principal: Object.freeze(principal), tokenId: rec.id, expiresAt: rec.expiresAt ? Date.parse(rec.expiresAt) : undefined, at: performance.now() });
    let set = this.verifiedKeys.get(rec.id);
    if (!set) this.verifiedKeys.set(rec.id, (set = new Set()));
    set.add(cacheKey);
  }

  private dropVerified(cacheKey: string, tokenId: string): void {
    this.verified.delete(cacheKey);
    const set = this.verifiedKeys.get(tokenId);
    set?.delete(cacheKey);
    if (set?.size === 0) this.verifiedKeys.delete(tokenId);
  }

  /** Forgets every verified bearer of token `id` (it changed, or was revoked or deleted). */
  private forgetVerified(id: string): void {
    this.changes++;
    const set = this.verifiedKeys.get(id);
    if (!set) return;
    for (const k of set) this.verified.delete(k);
    this.verifiedKeys.delete(id);
  }

  private clearVerified(): void {
    this.changes++;
    this.verified.clear();
    this.verifiedKeys.clear();
  }

  /**
   * Watches the tokens so changes made through any server reach this one's cache. Started on the
   * first verification (no timer of its own), from the store's revision at that moment, so a
   * token read after it started cannot change unseen; while it is not running nothing is cached.
   * When it ends (store closed, watch broken) the cache is emptied, and the next verification
   * (a second later at the soonest) starts it again.
   */
  private ensureWatch(): void {
    if (this.watch || this.watchStarting || performance.now() - this.watchTriedAt < 1000) return;
    this.watchTriedAt = performance.now();
    this.watchStarting = true;
    void (async () => {
      let watch: Watch;
      try {
        const revision = await this.store.revision();
        watch = this.store.watch(keys.tokens(), { fromRevision: revision + 1 });
      } catch {
        return; // store closed or unavailable: no cache for now
      } finally {
        this.watchStarting = false;
      }
      this.watch = watch;
      try {
        for await (const ev of watch) {
          // A new token (version 1) cannot make a cached answer stale; changes and deletions can.
          if (ev.type === 'delete' || ev.version > 1) this.forgetVerified(ev.key.slice(keys.tokens().length));
        }
      } catch {
        /* broken watch: fall through */
      } finally {
        if (this.watch === watch) this.watch = undefined;
        this.clearVerified();
      }
    })();
  }
}
