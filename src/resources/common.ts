/** Schema pieces shared by every resource. */
import { Type, type TSchema, type TUnsafe } from '@sinclair/typebox';

/** A lower-case DNS-label style name: tenants, profiles, labels. */
export const Name = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$', description: 'lower-case letters, digits and dashes; 1-63 characters' });

/** RFC 3339 timestamp. */
export const Timestamp = Type.String({ format: 'date-time' });

export const Labels = Type.Record(Type.String({ maxLength: 63 }), Type.String({ maxLength: 253 }), { description: 'key/value labels' });

/** `{"items":[…]}`, the shape of every listing. */
export const List = <T extends TSchema>(item: T) => Type.Object({ items: Type.Array(item), next: Type.Optional(Type.String()) });

export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String({ description: 'stable NEXUS_E_… code: see docs/errors.md' }),
    message: Type.String(),
    field: Type.Optional(Type.String()),
  }),
});

/** A string that must be one of `values`: one clear validation message ("must be one of …"). */
export function StringEnum<const T extends readonly string[]>(values: T, description?: string): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...(description ? { description } : {}) });
}
