/** Tokens: a public accessor id, a secret kept only as a hash, one role, one tenant. */
import { NexusError } from '../errors/catalogue.js';
import type { Role, Token, TokenCreate, TokenRecord } from '../resources/token.js';
import { createJson, getJson, listJson, updateJson } from '../store/json.js';
import { keys } from '../store/keys.js';
import type { Clock, StateStore } from '../store/types.js';
import { authorize, authorizeMint, type Principal } from './roles.js';
import { formatToken, hashSecret, newAccessorId, newSecret, parseToken, secretMatches } from './secrets.js';
import { DEFAULT_TENANT, type TenantService } from './tenants.js';

/** The in-process principal used for bootstrap; never reachable over the API. */
export const SYSTEM: Principal = { tokenId: 'system', role: 'admin', tenant: DEFAULT_TENANT };

function publicView(rec: TokenRecord): Token {
  const { secretHash: _hidden, ...pub } = rec;
  return pub;
}

export class TokenService {
  constructor(
    private readonly store: StateStore,
    private readonly tenants: TenantService,
    private readonly clock: Clock,
  ) {}

  /** Mints a token; the secret is returned once and never stored. */
  async create(by: Principal, req: TokenCreate): Promise<{ token: string; item: Token }> {
    const tenant = req.tenant ?? by.tenant;
    authorizeMint(by, req.role, tenant);
    if (!(await this.tenants.exists(tenant))) throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'tenant', id: tenant }, { field: 'tenant' });
    const id = newAccessorId();
    const secret = newSecret();
    const now = this.clock();
    const rec: TokenRecord = {
      id,
      role: req.role,
      tenant,
      ...(req.name ? { name: req.name } : {}),
      createdAt: new Date(now).toISOString(),
      createdBy: by.tokenId,
      ...(req.ttlSeconds ? { expiresAt: new Date(now + req.ttlSeconds * 1000).toISOString() } : {}),
      secretHash: hashSecret(secret),
    };
    await createJson(this.store, keys.token(id), rec, { kind: 'token', id });
    return { token: formatToken(id, secret), item: publicView(rec) };
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
    const at = new Date(this.clock()).toISOString();
    const updated = await updateJson<TokenRecord>(this.store, keys.token(id), (t) => (t.revokedAt ? undefined : { ...t, revokedAt: at }), { kind: 'token', id });
    return publicView(updated);
  }

  /** Resolves a bearer token to its principal, or throws NEXUS_E_BAD_TOKEN. */
  async verify(bearer: string): Promise<Principal> {
    const parsed = parseToken(bearer);
    if (!parsed) throw new NexusError('NEXUS_E_BAD_TOKEN', { detail: 'it is not a NEXUS token (expected nxt_<id>.<secret>)' });
    const rec = await getJson<TokenRecord>(this.store, keys.token(parsed.id));
    if (!rec || !secretMatches(parsed.secret, rec.secretHash)) throw new NexusError('NEXUS_E_BAD_TOKEN', { detail: 'unknown token or wrong secret' });
    if (rec.revokedAt) throw new NexusError('NEXUS_E_BAD_TOKEN', { detail: `token ${rec.id} was revoked at ${rec.revokedAt}` });
    if (rec.expiresAt && Date.parse(rec.expiresAt) <= this.clock()) throw new NexusError('NEXUS_E_BAD_TOKEN', { detail: `token ${rec.id} expired at ${rec.expiresAt}` });
    return { tokenId: rec.id, role: rec.role as Role, tenant: rec.tenant };
  }
}
