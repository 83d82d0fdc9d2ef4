// core's fused recurrentSequence primitive against the composed cells it replaces: the same outputs, final
// states and gradients (1e-10 in float64, 1e-5 in float32 on every backend), and float64 numerical
// gradient checks of the primitive itself.
import { describe, expect, it } from 'vitest';
import {
  Generator, add, backend, concat, fromFunction, getBackend, mul, noGrad, recurrentSequence, reshape, setBackend, sum,
  ShapeError, LoomError, type Backend, type DType, type RecurrentKind, type Tensor,
} from '@loom/core';
import { jsGates, sigmoidF32, tanhF32, type GateKernels } from '../../core/src/fused/recurrent-kernel.js';
import { createSimdGates } from '../../core/src/fused/recurrent-simd.js';
import { gradcheck } from '../../core/test/helpers/gradcheck.js';
import { RecurrentLayer, CELL_KINDS, type CellKind, type RecurrentState } from '../src/index.js';

function rand(shape: number[], seed: number, dtype: DType, be: Backend, requiresGrad = false, scale = 0.8): Tensor {
  const g = new Generator(seed);
  return fromFunction(shape, () => g.normal(0, scale), { dtype, backend: be, requiresGrad });
}

interface Setup { kind: CellKind; layers: number; bidirectional: boolean; bias: boolean; lengths: number[] | null; state: boolean }

/** Runs the same layer (same parameters) both ways and compares everything. */
function compare(s: Setup, dtype: DType, be: Backend, tol: number): void {
  const T = 6, B = 4, D = 5, H = 7;
  const dirs = s.bidirectional ? 2 : 1;
  const make = (implementation: 'fused' | 'composed'): RecurrentLayer => {
    // Parameters are made on the current backend: the one under test, for the length of the constructor.
    const previous = getBackend();
    setBackend(be);
    try {
      return new RecurrentLayer(s.kind, { inputSize: D, hiddenSize: H, numLayers: s.layers, bidirectional: s.bidirectional, bias: s.bias, dtype, generator: new Generator(1), implementation });
    } finally {
      setBackend(previous);
    }
  };
  const results = (['fused', 'composed'] as const).map((impl) => {
    const layer = make(impl);
    const x = rand([T, B, D], 2, dtype, be, true);
    let state: RecurrentState | null = null;
    if (s.state) {
      state = { h: rand([s.layers * dirs, B, H], 3, dtype, be, true) };
      if (s.kind === 'lstm') state.c = rand([s.layers * dirs, B, H], 4, dtype, be, true);
    }
    const r = layer.forward(x, state, { lengths: s.lengths });
    const wo = rand([...r.output.shape], 5, dtype, be), wh = rand([...r.state.h.shape], 6, dtype, be);
    let loss = add(sum(mul(r.output, wo)), sum(mul(r.state.h, wh)));
    if (r.state.c) loss = add(loss, sum(mul(r.state.c, rand([...r.state.c.shape], 7, dtype, be))));
    loss.backward();
    const named: [string, Tensor][] = [['output', r.output], ['h_n', r.state.h]];
    if (r.state.c) named.push(['c_n', r.state.c]);
    for (const [n, p] of layer.namedParameters()) named.push([`grad ${n}`, p.grad!]);
    named.push(['grad x', x.grad!]);
    if (state) {
      named.push(['grad h0', state.h.grad!]);
      if (state.c) named.push(['grad c0', state.c.grad!]);
    }
    return named;
  });
  const [fused, composed] = results;
  expect(fused.map(([n]) => n)).toEqual(composed.map(([n]) => n));
  fused.forEach(([name, a], i) => {
    const b = composed[i][1];
    expect(a.shape, name).toEqual(b.shape);
    let worst = 0;
    for (let k = 0; k < a.size; k++) worst = Math.max(worst, Math.abs(a.data[k] - b.data[k]));
    expect(worst, `${name}: fused vs composed`).toBeLessThanOrEqual(tol);
  });
}

const setups: Setup[] = CELL_KINDS.flatMap((kind) => [
  { kind, layers: 1, bidirectional: false, bias: true, lengths: null, state: false },
  { kind, layers: 2, bidirectional: true, bias: true, lengths: [6, 3, 1, 5], state: true },
  { kind, layers: 1, bidirectional: true, bias: false, lengths: [0, 6, 2, 2], state: true },
]);
const label = (s: Setup): string => `${s.kind} L${s.layers}${s.bidirectional ? ' bidirectional' : ''}${s.bias ? '' : ' no bias'}${s.lengths ? ` lengths [${s.lengths}]` : ''}${s.state ? ' state' : ''}`;

describe('fused recurrentSequence equals the composed cells', () => {
  it.each(setups.map((s) => [label(s), s] as const))('%s: float64, reference backend, 1e-10', (_l, s) => compare(s, 'float64', backend('reference'), 1e-10));
  it.each(setups.map((s) => [label(s), s] as const))('%s: float32, reference backend, 1e-5', (_l, s) => compare(s, 'float32', backend('reference'), 1e-5));
  it.each(setups.map((s) => [label(s), s] as const))('%s: float32, wasm backend, 1e-5', (_l, s) => compare(s, 'float32', backend('wasm'), 1e-5));
});

describe('recurrentSequence gradients (float64, numerical)', () => {
  const ref = backend('reference');
  const T = 4, B = 3, H = 3;
  const cases: [RecurrentKind, boolean, number[] | null][] = [
    ['rnn_tanh', false, null], ['rnn_relu', true, [4, 2, 0]], ['lstm', false, [1, 4, 3]], ['lstm', true, null], ['gru', false, null], ['gru', true, [3, 0, 4]],
  ];
  it.each(cases)('%s reverse=%s lengths=%j', (kind, reverse, lengths) => {
    const G = kind === 'lstm' ? 4 : kind === 'gru' ? 3 : 1;
    const xp = rand([T, B, G * H], 1, 'float64', ref, true), wHh = rand([G * H, H], 2, 'float64', ref, true, 0.5);
    const bIh = rand([G * H], 3, 'float64', ref, true), bHh = rand([G * H], 4, 'float64', ref, true);
    const h0 = rand([B, H], 5, 'float64', ref, true), c0 = rand([B, H], 6, 'float64', ref, true);
    gradcheck((a, w, bi, bh, h, c) => {
      const r = recurrentSequence(kind, { xp: a, wHh: w, bIh: bi, bHh: bh, h0: h, c0: kind === 'lstm' ? c : null }, { reverse, lengths });
      return concat([reshape(r.output, [-1]), reshape(r.h, [-1]), ...(r.c ? [reshape(r.c, [-1])] : [])], 0);
    }, [xp, wHh, bIh, bHh, h0, kind === 'lstm' ? c0 : c0.detach()]);
  });

  it('computes the same values without recording the graph', () => {
    const xp = rand([T, B, 4 * H], 1, 'float64', ref, true), wHh = rand([4 * H, H], 2, 'float64', ref, true);
    const h0 = rand([B, H], 5, 'float64', ref), c0 = rand([B, H], 6, 'float64', ref);
    const a = recurrentSequence('lstm', { xp, wHh, h0, c0 }, { lengths: [4, 1, 2] });
    const b = noGrad(() => recurrentSequence('lstm', { xp, wHh, h0, c0 }, { lengths: [4, 1, 2] }));
    expect(b.output.requiresGrad).toBe(false);
    expect(Array.from(b.output.data)).toEqual(Array.from(a.output.data));
    expect(Array.from(b.c!.data)).toEqual(Array.from(a.c!.data));
  });
});

describe('recurrentSequence arguments', () => {
  const ref = backend('reference');
  const xp = rand([2, 3, 8], 1, 'float32', ref), wHh = rand([8, 2], 2, 'float32', ref), h0 = rand([3, 2], 3, 'float32', ref);
  it('names the argument and the expected shape', () => {
    expect(() => recurrentSequence('lstm', { xp, wHh, h0 })).toThrow(/recurrentSequence\(lstm\): 'c0' must be \[3, 2\] \(\[B, H\]\), got null/);
    expect(() => recurrentSequence('gru', { xp, wHh, h0 })).toThrow(/'wHh' must be \[3·H, H\], got \[8, 2\]/);
    expect(() => recurrentSequence('lstm', { xp, wHh, h0: rand([2, 2], 3, 'float32', ref), c0: h0 })).toThrow(ShapeError);
    expect(() => recurrentSequence('lstm', { xp, wHh, h0, c0: h0, bIh: rand([4], 1, 'float32', ref) })).toThrow(/'bIh' must be \[8\] \(G·H\), got \[4\]/);
    expect(() => recurrentSequence('rnn_tanh', { xp: rand([2, 3, 2], 1, 'float32', ref), wHh: rand([2, 2], 1, 'float32', ref), h0: rand([3, 2], 1, 'float32', ref), c0: h0 })).toThrow(/'c0' is only for lstm/);
    expect(() => recurrentSequence('lstm', { xp, wHh, h0, c0: h0 }, { lengths: [1, 2, 3] })).toThrow(/opts.lengths\[2\] must be an integer in \[0, 2\]/);
    expect(() => recurrentSequence('lstm', { xp, wHh: rand([8, 2], 2, 'float64', ref), h0, c0: h0 })).toThrow(LoomError);
  });
});

describe('the float32 activations', () => {
  it('tanhF32 and sigmoidF32 stay within 3e-7 of Math.tanh and the exact sigmoid', () => {
    let worstT = 0, worstS = 0;
    for (let x = -30; x <= 30; x += 1e-3) {
      worstT = Math.max(worstT, Math.abs(tanhF32(x) - Math.tanh(x)));
      worstS = Math.max(worstS, Math.abs(sigmoidF32(x) - 1 / (1 + Math.exp(-x))));
    }
    expect(worstT).toBeLessThan(3e-7);
    expect(worstS).toBeLessThan(3e-7);
    for (const x of [1e-8, 1e-4, 0.01]) expect(Math.abs(tanhF32(x) / Math.tanh(x) - 1)).toBeLessThan(3e-7); // relative, near 0 too
    expect(tanhF32(-0.3)).toBe(-tanhF32(0.3));
  });
});

describe('the WebAssembly SIMD gate loops', () => {
  const simd = createSimdGates();
  it('exist where the runtime has SIMD (Node 20 has it)', () => expect(simd).not.toBeNull());

  // Every H mod 4 (the SIMD part takes 4·⌊H/4⌋ columns, JavaScript the rest), with and without masked rows.
  const cases = [1, 3, 4, 6, 9, 16].flatMap((H) => [null, [1, 0, 1]].map((m) => [H, m] as const));
  it.each(cases)('match the JavaScript loops: H = %i, mask %j', (H, maskList) => {
    const B = 3, g = new Generator(H);
    const arr = (n: number, lo = -3, hi = 3): Float32Array => Float32Array.from({ length: n }, () => g.uniform(lo, hi));
    const mask = maskList ? Uint8Array.from(maskList) : null;
    const check = (name: string, a: Float32Array[], b: Float32Array[]): void => {
      a.forEach((x, i) => {
        let worst = 0;
        for (let j = 0; j < x.length; j++) worst = Math.max(worst, Math.abs(x[j] - b[i][j]));
        expect(worst, `${name}: output ${i}`).toBeLessThan(2e-6);
      });
    };
    const lstm = (k: GateKernels, xp: Float32Array, hh: Float32Array, bx: Float32Array, c: Float32Array, h: Float32Array): Float32Array[] => {
      const out = [c.slice(), h.slice(), new Float32Array(B * H), new Float32Array(4 * B * H), new Float32Array(B * H), new Float32Array(B * H)];
      k.lstm(B, H, xp, hh, bx, out[0], out[1], out[2], out[3], out[4], out[5], mask);
      return out;
    };
    const x4 = [arr(4 * B * H), arr(4 * B * H), arr(4 * H), arr(B * H), arr(B * H)] as const;
    check('lstm', lstm(simd!, ...x4), lstm(jsGates, ...x4));

    const acts4 = arr(4 * B * H, 0.01, 0.99), dy = arr(B * H), cp = arr(B * H), tc = arr(B * H, -0.99, 0.99), dh = arr(B * H), dc = arr(B * H);
    const lstmB = (k: GateKernels): Float32Array[] => {
      const out = [dc.slice(), new Float32Array(4 * B * H)];
      k.lstmBackward(B, H, dy, acts4, cp, tc, dh, out[0], out[1], mask);
      return out;
    };
    check('lstmBackward', lstmB(simd!), lstmB(jsGates));

    const x3 = [arr(3 * B * H), arr(3 * B * H), arr(3 * H), arr(H), arr(B * H)] as const;
    const gru = (k: GateKernels): Float32Array[] => {
      const out = [x3[4].slice(), new Float32Array(B * H), new Float32Array(3 * B * H), new Float32Array(B * H)];
      k.gru(B, H, x3[0], x3[1], x3[2], x3[3], out[0], out[1], out[2], out[3], mask);
      return out;
    };
    check('gru', gru(simd!), gru(jsGates));

    const acts3 = arr(3 * B * H, 0.01, 0.99), hp = arr(B * H), hn = arr(B * H);
    const gruB = (k: GateKernels): Float32Array[] => {
      const out = [new Float32Array(3 * B * H), new Float32Array(3 * B * H), new Float32Array(B * H)];
      k.gruBackward(B, H, dy, acts3, hp, hn, dh, out[0], out[1], out[2], mask);
      return out;
    };
    check('gruBackward', gruB(simd!), gruB(jsGates));
  });
});
