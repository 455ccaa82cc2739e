/** Tokens: a public accessor id, a secret kept only as a hash, one role, one tenant. */
import { NexusError } from '../errors/catalogue.js';
import type { Role, Token, TokenCreate, TokenRecord } from '../resources/token.js';
import { createJson, getJson, listJson, updateJson } from '../store/json.js';
import { keys } from '../store/keys.js';
import type { Clock, StateStore } from '../store/types.js';
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
}

export class TokenService {
  constructor(
    private readonly store: StateStore,
    private readonly tenants: TenantService,
    private readonly clock: Clock,
    private readonly options: TokenServiceOptions = {},
  ) {}

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
    return publicView(updated);
  }

  /**
   * Resolves a bearer token (`nxt_<id>.<secret>`, or a join token `NX1<pin>::<id>.<secret>`) to its
   * principal, or throws NEXUS_E_BAD_TOKEN (NEXUS_E_DEVICE_REVOKED for a revoked device credential).
   */
  async verify(bearer: string): Promise<Principal> {
    const parsed = parseAnyToken(bearer);
    if (!parsed) throw new NexusError('NEXUS_E_BAD_TOKEN', { detail: 'it is not a NEXUS token (expected nxt_<id>.<secret> or NX1<pin>::<id>.<secret>)' });
    if (parsed.pin && this.options.joinPin && parsed.pin !== this.options.joinPin) {
      throw new NexusError('NEXUS_E_BAD_TOKEN', { detail: `it is a join token of another cluster (CA pin ${parsed.pin.slice(0, 12)}…)` });
    }
    const rec = await getJson<TokenRecord>(this.store, keys.token(parsed.id));
    if (!rec || !secretMatches(parsed.secret, rec.secretHash)) throw new NexusError('NEXUS_E_BAD_TOKEN', { detail: 'unknown token or wrong secret' });
    if (rec.revokedAt && rec.deviceId) throw new NexusError('NEXUS_E_DEVICE_REVOKED', { id: rec.deviceId, at: rec.revokedAt });
    if (rec.revokedAt) throw new NexusError('NEXUS_E_BAD_TOKEN', { detail: `token ${rec.id} was revoked at ${rec.revokedAt}` });
    if (rec.expiresAt && Date.parse(rec.expiresAt) <= this.clock()) throw new NexusError('NEXUS_E_BAD_TOKEN', { detail: `token ${rec.id} expired at ${rec.expiresAt}` });
    return { tokenId: rec.id, role: rec.role as Role, tenant: rec.tenant, ...(rec.deviceId ? { deviceId: rec.deviceId } : {}) };
  }
}
