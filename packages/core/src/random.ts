/**
 * A seeded, reproducible generator (xoshiro128**: 32-bit arithmetic, fast in JS, 2^128 period).
 * Its state is four uint32 words, saved in checkpoints so a resumed run draws the same numbers.
 */
export class Generator {
  private s = new Uint32Array(4);
  private spareNormal: number | null = null;

  constructor(seed = 0) {
    this.seed(seed);
  }

  /** Re-seeds with splitmix32 so that nearby seeds give unrelated streams. */
  seed(seed: number): this {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.s[0] === 0 && this.s[1] === 0 && this.s[2] === 0 && this.s[3] === 0) this.s[0] = 1;
    this.spareNormal = null;
    return this;
  }

  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of randomness. */
  random(): number {
    return this.nextUint32() / 4294967296;
  }

  uniform(low = 0, high = 1): number {
    return low + (high - low) * this.random();
  }

  /** Standard normal by Box-Muller; the second value of each pair is kept for the next call. */
  normal(mean = 0, std = 1): number {
    if (this.spareNormal !== null) {
      const z = this.spareNormal;
      this.spareNormal = null;
      return mean + std * z;
    }
    let u = 0;
    while (u === 0) u = this.random();
    const v = this.random();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return mean + std * r * Math.cos(2 * Math.PI * v);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  getState(): GeneratorState {
    return { words: Array.from(this.s), spareNormal: this.spareNormal };
  }

  setState(state: GeneratorState): this {
    if (!state || !Array.isArray(state.words) || state.words.length !== 4) {
      throw new Error('Generator.setState: expected { words: [4 uint32], spareNormal }');
    }
    this.s.set(state.words.map((w) => w >>> 0));
    this.spareNormal = state.spareNormal ?? null;
    return this;
  }
}

export interface GeneratorState {
  words: number[];
  spareNormal: number | null;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The process-wide default generator, like torch's default generator; `manualSeed` re-seeds it. */
export const defaultGenerator = new Generator(0x10011);

export function manualSeed(seed: number): void {
  defaultGenerator.seed(seed);
}
