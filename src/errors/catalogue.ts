/**
 * The one error catalogue of NEXUS. Every error a user can see has a stable code here, an HTTP
 * status and a message template; users branch on `code`, never on text. `docs/errors.md` lists the
 * same codes (a unit test keeps the two in step).
 */

export interface ErrorSpec {
  /** HTTP status the API answers with. */
  readonly status: number;
  /** Message template; `{name}` placeholders are filled from the params. */
  readonly message: string;
}

export const ERRORS = {
  // Request shape
  NEXUS_E_BAD_JSON: { status: 400, message: 'The request body is not valid JSON: {detail}. Send a JSON object.' },
  NEXUS_E_VALIDATION: { status: 400, message: 'Field {field} is invalid: {detail}.' },
  NEXUS_E_UNKNOWN_FIELD: { status: 400, message: 'Field {field} is not known here; remove it (check its spelling).' },
  NEXUS_E_BODY_TOO_LARGE: { status: 413, message: 'The request body is larger than the limit of {limit} bytes.' },
  NEXUS_E_UNSUPPORTED_MEDIA: { status: 415, message: 'Content type {detail} is not supported; send application/json.' },
  NEXUS_E_NOT_FOUND: { status: 404, message: '{kind} {id} was not found.' },
  NEXUS_E_ROUTE_NOT_FOUND: { status: 404, message: 'No route {method} {url}. See GET /v1/openapi.json for the API.' },
  NEXUS_E_METHOD_NOT_ALLOWED: { status: 405, message: 'Method {method} is not allowed on {url}.' },
  NEXUS_E_ALREADY_EXISTS: { status: 409, message: '{kind} {id} already exists.' },
  NEXUS_E_CONFLICT: { status: 409, message: '{detail}' },
  NEXUS_E_IN_USE: { status: 409, message: '{kind} {id} is still in use: {detail}.' },

  // Auth
  NEXUS_E_UNAUTHENTICATED: { status: 401, message: 'A token is required: send "Authorization: Bearer TOKEN" (the CLI reads NEXUS_TOKEN).' },
  NEXUS_E_BAD_TOKEN: { status: 401, message: 'The token is not valid: {detail}.' },
  NEXUS_E_FORBIDDEN: { status: 403, message: 'Role {role} may not {action}.' },
  NEXUS_E_ROLE_ESCALATION: { status: 403, message: 'A {role} token cannot mint a {wanted} token: nobody can mint a token stronger than their own.' },
  NEXUS_E_TENANT_SCOPE: { status: 403, message: 'This token belongs to tenant {tenant}; it cannot act on tenant {wanted}.' },

  // Devices
  NEXUS_E_JOIN_PIN_MISMATCH: { status: 400, message: 'The server at {addr} presented a cluster CA with pin {actual}, but the join token pins {expected}; the token was not sent. Check --join and the token: a mismatch can mean the connection is intercepted.' },
  NEXUS_E_STREAM_IDLE: { status: 408, message: 'No heartbeat arrived on this stream for {seconds} s, so the server closed it; open a new one.' },
  NEXUS_E_DEVICE_REVOKED: { status: 403, message: 'Device {id} was revoked at {at}; its credential no longer works. To bring it back, delete its agent data dir and join it again with a new join token.' },

  // Compute
  NEXUS_E_QUOTA_EXCEEDED: { status: 403, message: 'The job cannot be admitted: {detail}. Request less, or ask an administrator to raise the quota.' },
  NEXUS_E_TASK_MOVED: { status: 409, message: 'Task {id} is no longer yours to run on device {device}: {detail}. Stop it.' },

  // Store
  NEXUS_E_STORE_COMPACTED: { status: 410, message: 'Revision {revision} has been compacted (oldest kept: {compactRevision}); re-read the current state and watch from there.' },
  NEXUS_E_STORE_FUTURE_REVISION: { status: 400, message: 'Revision {revision} is in the future (current: {current}).' },
  NEXUS_E_STORE_LEASE_NOT_FOUND: { status: 404, message: 'Lease {lease} does not exist or has expired.' },
  NEXUS_E_STORE_UNAVAILABLE: { status: 503, message: 'The state store is unavailable: {detail}.' },
  NEXUS_E_STORE_CLOSED: { status: 503, message: 'The state store is closed.' },
  NEXUS_E_NOT_LEADER: { status: 503, message: 'This server no longer holds leadership; the write was refused.' },

  // Configuration and CLI
  NEXUS_E_CONFIG: { status: 400, message: 'Configuration {field} is invalid: {detail}.' },
  NEXUS_E_CONNECT: { status: 503, message: 'Cannot reach the NEXUS server at {addr}: {detail}. Is it running? (set NEXUS_ADDR)' },
  NEXUS_E_NETPROBE: { status: 503, message: 'Network probe of {target} failed: {detail}.' },

  // Server
  NEXUS_E_NOT_READY: { status: 503, message: 'The server is not ready: {detail}.' },
  NEXUS_E_INTERNAL: { status: 500, message: 'Internal error ({detail}); the server log has the details.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export type ErrorParams = Record<string, string | number | boolean | undefined>;

function render(template: string, params: ErrorParams): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const v = params[name];
    return v === undefined ? `<${name}>` : String(v);
  });
}

/**
 * The error every NEXUS layer throws. `field` names the request field at fault, where there is one.
 *
 * @example
 * throw new NexusError('NEXUS_E_NOT_FOUND', { kind: 'tenant', id: 'acme' });
 */
export class NexusError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly field?: string;
  readonly params: ErrorParams;

  constructor(code: ErrorCode, params: ErrorParams = {}, options: { cause?: unknown; field?: string } = {}) {
    super(render(ERRORS[code].message, params), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NexusError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.params = params;
    const field = options.field ?? (typeof params.field === 'string' ? params.field : undefined);
    if (field !== undefined) this.field = field;
  }

  /** The JSON body the API answers with. */
  toJSON(): { error: { code: ErrorCode; message: string; field?: string } } {
    return { error: { code: this.code, message: this.message, ...(this.field ? { field: this.field } : {}) } };
  }
}

export function isNexusError(err: unknown, code?: ErrorCode): err is NexusError {
  return err instanceof NexusError && (code === undefined || err.code === code);
}
