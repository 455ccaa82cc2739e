/** Latency samples and their percentiles, for the device simulator. */

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function percentiles(xs: Float64Array | number[]): Percentiles {
  const a = Float64Array.from(xs).sort();
  const at = (p: number) => (a.length ? a[Math.min(a.length - 1, Math.ceil(p * a.length) - 1)]! : 0);
  return { count: a.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: a.length ? a[a.length - 1]! : 0 };
}

/** A growable Float64Array of samples. */
export class Samples {
  private a = new Float64Array(1 << 16);
  n = 0;
  push(x: number): void {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = x;
  }
  take(): Float64Array {
    const out = this.a.slice(0, this.n);
    this.n = 0;
    return out;
  }
}
