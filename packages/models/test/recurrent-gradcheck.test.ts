// Float64 numerical gradient checks of every recurrent cell and of stacked, bidirectional, masked layers
// (both implementations), on the reference backend at small sizes.
import { afterAll, beforeAll, describe, it } from 'vitest';
import { Generator, concat, fromFunction, getBackend, reshape, setBackend, type Backend, type Tensor } from '@loom/core';
import { gradcheck } from '../../core/test/helpers/gradcheck.js';
import { Cell, RecurrentLayer, CELL_KINDS, type CellKind } from '../src/index.js';

let previous: Backend;
beforeAll(() => { previous = getBackend(); setBackend('reference'); });
afterAll(() => void setBackend(previous));

function randn(shape: number[], seed: number, requiresGrad = true): Tensor {
  const g = new Generator(seed);
  return fromFunction(shape, () => g.normal(0, 0.8), { dtype: 'float64', requiresGrad });
}

const flat = (ts: (Tensor | undefined)[]): Tensor => concat(ts.filter((t): t is Tensor => !!t).map((t) => reshape(t, [-1])), 0);

describe('cells: one step', () => {
  it.each(CELL_KINDS.map((k) => [k]))('%s', (kind: CellKind) => {
    const B = 3, D = 2, H = 3;
    const cell = new Cell(kind, D, H, { dtype: 'float64', generator: new Generator(1) });
    const x = randn([B, D], 2), h = randn([B, H], 3), c = randn([B, H], 4);
    const params = cell.parameters();
    gradcheck((xx, hh, cc) => {
      const s = cell.forward(xx, kind === 'lstm' ? { h: hh, c: cc } : { h: hh });
      return flat([s.h, s.c]);
    }, [x, h, kind === 'lstm' ? c : c.detach(), ...params]);
  });
});

describe('layers: 2 layers, bidirectional, lengths, initial state', () => {
  const T = 4, B = 3, D = 2, H = 3, L = 2;
  for (const implementation of ['composed', 'fused'] as const) {
    it.each(CELL_KINDS.map((k) => [k]))(`%s (${implementation})`, (kind: CellKind) => {
      const layer = new RecurrentLayer(kind, { inputSize: D, hiddenSize: H, numLayers: L, bidirectional: true, dtype: 'float64', generator: new Generator(5), implementation });
      const x = randn([T, B, D], 6), h0 = randn([L * 2, B, H], 7), c0 = randn([L * 2, B, H], 8);
      gradcheck((xx, hh, cc) => {
        const r = layer.forward(xx, kind === 'lstm' ? { h: hh, c: cc } : { h: hh }, { lengths: [2, 4, 1] });
        return flat([r.output, r.state.h, r.state.c]);
      }, [x, h0, kind === 'lstm' ? c0 : c0.detach(), ...layer.parameters()]);
    });
  }

  it('with dropout between layers (a fixed mask per evaluation)', () => {
    const gen = new Generator(9);
    const layer = new RecurrentLayer('lstm', { inputSize: D, hiddenSize: H, numLayers: L, dropout: 0.4, dtype: 'float64', generator: gen, implementation: 'composed' });
    const x = randn([T, B, D], 10);
    gradcheck((xx) => {
      gen.seed(11); // the same dropout mask every time the function is evaluated
      const r = layer.forward(xx);
      return flat([r.output, r.state.h, r.state.c]);
    }, [x, ...layer.parameters()]);
  });
});
