// The seeded generator: reproducible streams, exact resumption from saved state, sane distributions.
import { describe, expect, it } from 'vitest';
import { Generator, defaultGenerator, manualSeed } from '../src/index.js';

const draw = (g: Generator, n: number, f: (g: Generator) => number = (x) => x.random()): number[] => Array.from({ length: n }, () => f(g));

function moments(xs: ArrayLike<number>): { mean: number; std: number } {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  const mean = s / xs.length;
  let v = 0;
  for (let i = 0; i < xs.length; i++) v += (xs[i] - mean) ** 2;
  return { mean, std: Math.sqrt(v / (xs.length - 1)) };
}

describe('Generator', () => {
  it('the same seed gives the same stream; nearby seeds give different ones', () => {
    expect(draw(new Generator(42), 100)).toEqual(draw(new Generator(42), 100));
    expect(draw(new Generator(42), 10)).not.toEqual(draw(new Generator(43), 10));
    const g = new Generator(42);
    const first = draw(g, 5);
    g.seed(42);
    expect(draw(g, 5)).toEqual(first);
  });

  it('getState/setState resumes the stream exactly, including a pending normal of a Box-Muller pair', () => {
    const g = new Generator(5);
    draw(g, 17);
    g.normal(); // leaves the second value of the pair pending
    const state = g.getState();
    const saved = JSON.parse(JSON.stringify(state)); // as a checkpoint stores it
    const expected = [...draw(g, 3, (x) => x.normal()), ...draw(g, 4), ...draw(g, 3, (x) => x.int(1000))];
    const h = new Generator(999).setState(saved);
    expect([...draw(h, 3, (x) => x.normal()), ...draw(h, 4), ...draw(h, 3, (x) => x.int(1000))]).toEqual(expected);
    expect(() => g.setState({ words: [1, 2], spareNormal: null })).toThrow('Generator.setState: expected { words: [4 uint32], spareNormal }');
  });

  it('manualSeed re-seeds the default generator', () => {
    manualSeed(123);
    const a = draw(defaultGenerator, 5);
    manualSeed(123);
    expect(draw(defaultGenerator, 5)).toEqual(a);
  });

  it('random and uniform: range and moments on 100k samples', () => {
    const g = new Generator(1);
    const n = 100_000;
    const u = draw(g, n);
    expect(Math.min(...u)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...u)).toBeLessThan(1);
    const { mean, std } = moments(u);
    // U(0,1): mean 1/2, std 1/√12; standard error of the mean 0.0009, of the std about 0.0005.
    expect(Math.abs(mean - 0.5)).toBeLessThan(4 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(std - Math.sqrt(1 / 12))).toBeLessThan(0.003);
    const w = draw(g, n, (x) => x.uniform(-3, 5));
    expect(Math.min(...w)).toBeGreaterThanOrEqual(-3);
    expect(Math.max(...w)).toBeLessThan(5);
    expect(Math.abs(moments(w).mean - 1)).toBeLessThan(4 * 8 * Math.sqrt(1 / 12 / n));
  });

  it('normal: moments, tails and parameters on 100k samples', () => {
    const g = new Generator(2);
    const n = 100_000;
    const z = draw(g, n, (x) => x.normal());
    const { mean, std } = moments(z);
    expect(Math.abs(mean)).toBeLessThan(4 / Math.sqrt(n));
    expect(Math.abs(std - 1)).toBeLessThan(4 / Math.sqrt(2 * n));
    // P(|z| > 2) = 0.0455; standard error 0.00066
    const tail = z.filter((v) => Math.abs(v) > 2).length / n;
    expect(Math.abs(tail - 0.0455)).toBeLessThan(0.003);
    const s = moments(draw(g, n, (x) => x.normal(3, 0.5)));
    expect(Math.abs(s.mean - 3)).toBeLessThan(4 * 0.5 / Math.sqrt(n));
    expect(Math.abs(s.std - 0.5)).toBeLessThan(4 * 0.5 / Math.sqrt(2 * n));
  });

  it('int(n) covers [0, n) evenly', () => {
    const g = new Generator(3);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) counts[g.int(10)]++;
    // Each count ~ Binomial(1e5, 0.1): std 95
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
  });
});
