/**
 * What the simulator needs of joining, as `nexus agent` does it: the CA pin of an `NX1` join
 * token, fetching the CA without verifying the server (the pin is checked instead), and the
 * bearer inside a join token. Only `node:` modules: no NEXUS code.
 */
import { createHash, X509Certificate } from 'node:crypto';
import https from 'node:https';

/** SHA-256 of a PEM certificate's DER, hex: the pin in `NX1` join tokens. */
export function caPinOf(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}

/** `GET /v1/join/ca` without verifying the server and without any credential. */
export function fetchCaUnverified(server: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(new URL('/v1/join/ca', server), { rejectUnauthorized: false, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          const ca = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { ca?: string }).ca;
          if (res.statusCode === 200 && typeof ca === 'string') resolve(ca);
          else reject(new Error(`GET /v1/join/ca answered HTTP ${res.statusCode}`));
        } catch (e) {
          reject(e as Error);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('GET /v1/join/ca: no answer')));
    req.on('error', reject);
  });
}

export function parseJoinToken(token: string): { pin?: string; bearer: string } {
  const m = /^NX1([0-9a-f]{64})::([^.:\s]+)\.(\S+)$/.exec(token.trim());
  if (m) return { pin: m[1]!, bearer: `nxt_${m[2]}.${m[3]}` };
  if (/^nxt_[^.\s]+\.\S+$/.test(token.trim())) return { bearer: token.trim() };
  throw new Error('not a join token (expected NX1<pin>::<id>.<secret> or nxt_<id>.<secret>)');
}
