/** How a transaction compare is evaluated against a key as read (etcd semantics). */
import type { Compare } from './types.js';

/**
 * A missing key has modRevision, createRevision and version 0, and a value compare on it is
 * false whatever the operator (as in etcd).
 */
export function compareHolds(kv: { value: string; modRevision: number; createRevision: number; version: number } | undefined, c: Compare): boolean {
  let actual: number | string;
  switch (c.target) {
    case 'modRevision': actual = kv?.modRevision ?? 0; break;
    case 'createRevision': actual = kv?.createRevision ?? 0; break;
    case 'version': actual = kv?.version ?? 0; break;
    case 'value':
      if (!kv) return false;
      actual = kv.value;
      break;
  }
  switch (c.op) {
    case '=': return actual === c.value;
    case '!=': return actual !== c.value;
    case '<': return actual < c.value;
    case '>': return actual > c.value;
  }
}
