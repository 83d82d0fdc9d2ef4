/*
 * Optimizers and gradient clipping against PyTorch 1.13 trajectories. The fixtures come from
 * fixtures/optim/make_optim_fixtures.py (run it with /usr/bin/python3 to regenerate): initial
 * parameters from closed-form sequences, the gradients torch saw at each step, and the parameters after
 * every step. Here the same gradients are replayed through Loom's per-parameter optimizers, the flat
 * optimizer, and a flat optimizer split into three "workers" over shared state; every step must agree
 * with torch to 1e-6 (absolute or relative).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Module, Parameter } from '../src/nn/module.js';
import { Tensor } from '../src/tensor.js';
import { flattenParameters, type FlatParameters } from '../src/flat.js';
import {
  Adagrad, Adam, AdamW, FlatOptimizer, SGD, clipGradNorm, clipScale, createOptimizer, scaleRange, sumOfSquares,
  type Optimizer, type OptimizerKind, type OptimizerState, type OptionsInput,
} from '../src/optim/index.js';

const TOL = 1e-6;

interface StepRecord {
  grads: Record<string, number[]>;
  params: Record<string, number[]>;
  totalNorm?: number;
  clipped?: Record<string, number[]>;
}
interface ConfigRecord {
  name: string;
  kind: OptimizerKind;
  options: Record<string, unknown>;
  clip: { maxNorm: number; normType: number } | null;
  initial: Record<string, number[]>;
  steps: StepRecord[];
  finalState: Record<string, Record<string, number[] | number>>;
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/optim/optimizers.json', import.meta.url), 'utf8')) as {
  shapes: Record<string, number[]>;
  configs: ConfigRecord[];
};
const clipFixture = JSON.parse(readFileSync(new URL('./fixtures/optim/clip.json', import.meta.url), 'utf8')) as {
  cases: { normType: number | 'inf'; maxNorm: number; grads: number[][]; totalNorm: number; clipped: number[][] }[];
};

/** torch's state names → Loom's. */
const STATE_NAMES: Record<string, string> = {
  momentum_buffer: 'momentumBuffer', exp_avg: 'expAvg', exp_avg_sq: 'expAvgSq', max_exp_avg_sq: 'maxExpAvgSq', sum: 'sum',
};

/** The module the fixture's parameters belong to (same names, same order). */
class Toy extends Module {
  weight: Parameter;
  bias: Parameter;
  gain: Parameter;
  constructor(values: Record<string, ArrayLike<number>>) {
    super();
    this.weight = new Parameter(fixture.shapes.weight, { values: values.weight });
    this.bias = new Parameter(fixture.shapes.bias, { values: values.bias });
    this.gain = new Parameter(fixture.shapes.gain, { values: values.gain });
  }
}

/** Largest violation of |a − b| ≤ TOL·max(1, |b|), as a multiple of the allowed error (≤ 1 passes). */
function worst(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let w = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const err = Math.abs(actual[i] - e) / (TOL * Math.max(1, Math.abs(e)));
    if (!(err <= w)) w = err; // NaN propagates into w
  }
  return w;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  const w = worst(actual, expected);
  if (!(w <= 1)) expect.fail(`${what}: off by ${w.toFixed(2)}× the ${TOL} tolerance`);
}

const names = (): string[] => Object.keys(fixture.shapes);

describe('optimizers follow PyTorch trajectories', () => {
  it('covers the configurations the issue names', () => {
    const got = fixture.configs.map((c) => c.name);
    for (const n of ['sgd', 'sgd-momentum-wd', 'sgd-nesterov', 'adam', 'adam-amsgrad-wd', 'adamw', 'adagrad', 'clip-sgd-momentum']) {
      expect(got).toContain(n);
    }
    // the clipping fixtures clip on every step (the script asserts it; checked again here)
    for (const c of fixture.configs.filter((c) => c.clip)) {
      for (const s of c.steps) expect(s.totalNorm!).toBeGreaterThan(c.clip!.maxNorm);
    }
  });

  for (const cfg of fixture.configs) {
    const options = cfg.options as OptionsInput<typeof cfg.kind>;

    it(`${cfg.name}: per-parameter optimizer`, () => {
      const model = new Toy(cfg.initial);
      const opt = createOptimizer(cfg.kind, model, options);
      cfg.steps.forEach((rec, k) => {
        opt.zeroGrad();
        for (const [name, p] of model.namedParameters()) p.grad = new Tensor(Float32Array.from(rec.grads[name]), p.shape, 'float32', p.backend);
        if (cfg.clip) {
          const total = clipGradNorm(model, cfg.clip.maxNorm, cfg.clip.normType);
          expectClose([total], [rec.totalNorm!], `step ${k + 1} total norm`);
          for (const [name, p] of model.namedParameters()) expectClose(p.grad!.data, rec.clipped![name], `step ${k + 1} clipped ${name}`);
        }
        opt.step();
        for (const [name, p] of model.namedParameters()) expectClose(p.data, rec.params[name], `step ${k + 1} ${name}`);
      });
      expect(opt.stepCount).toBe(cfg.steps.length);
      checkFinalState(opt.stateDict(), cfg);
    });

    it(`${cfg.name}: flat optimizer, whole and split over three workers sharing state`, () => {
      const model = new Toy(cfg.initial);
      const flat = flattenParameters(model);
      const whole = new FlatOptimizer(flat, cfg.kind, options);
      // Three "workers" over a second copy, each updating its own slice of shared buffers. The cut points
      // fall inside parameters and inside padding, on purpose.
      const flat2 = flattenParameters(new Toy(cfg.initial), { shared: true });
      const lead = new FlatOptimizer(flat2, cfg.kind, options, { shared: true });
      const workers = [lead, ...[1, 2].map(() => new FlatOptimizer(flat2, cfg.kind, options, { state: lead.stateBuffers }))];
      const len = flat.layout.length;
      const cuts = [0, 7, 21, len];
      expect(len).toBeGreaterThan(21);
      for (const buf of lead.stateBuffers) expect(buf.buffer).toBeInstanceOf(SharedArrayBuffer);

      cfg.steps.forEach((rec, k) => {
        for (const f of [flat, flat2]) {
          f.grads.fill(0);
          for (const e of f.layout.entries) f.grads.set(rec.grads[e.name], e.offset);
        }
        let gradScale = 1;
        if (cfg.clip) {
          const total = clipGradNorm(flat.grads, cfg.clip.maxNorm, cfg.clip.normType);
          expectClose([total], [rec.totalNorm!], `step ${k + 1} total norm (flat)`);
          // the coordinator's way: partial sums of squares per slice, one scale, folded into each slice's
          // update (updateRange's gradScale) rather than written into the gradients
          if (cfg.clip.normType === 2) {
            const partial = workers.map((_, w) => sumOfSquares(flat2.grads, cuts[w], cuts[w + 1]));
            gradScale = clipScale(Math.sqrt(partial.reduce((a, b) => a + b, 0)), cfg.clip.maxNorm);
          } else {
            gradScale = clipScale(clipGradNorm(Float32Array.from(flat2.grads), cfg.clip.maxNorm, cfg.clip.normType), cfg.clip.maxNorm);
          }
          const scaled = Float32Array.from(flat2.grads);
          scaleRange(scaled, gradScale);
          expectClose(scaled, flat.grads, `step ${k + 1} sharded clipping`);
        }
        whole.step();
        workers.forEach((w, i) => w.updateRange(cuts[i], cuts[i + 1], gradScale));
        for (const e of flat.layout.entries) {
          expectClose(flat.values.subarray(e.offset, e.offset + e.size), rec.params[e.name], `step ${k + 1} ${e.name} (flat)`);
        }
        // same rule, same floats: sharding changes nothing, bit for bit (up to clipping's summation order)
        if (!cfg.clip) expect(flat2.values).toEqual(flat.values);
        else expectClose(flat2.values, flat.values, `step ${k + 1} sharded values`);
      });
      for (const w of workers) expect(w.stepCount).toBe(cfg.steps.length);
      checkFinalState(whole.stateDict(), cfg);
    });
  }
});

function checkFinalState(sd: OptimizerState, cfg: ConfigRecord): void {
  expect(sd.kind).toBe(cfg.kind);
  expect(sd.step).toBe(cfg.steps.length);
  expect(Object.keys(sd.state)).toEqual(names());
  for (const name of names()) {
    const torchState = cfg.finalState[name];
    const expectedNames = Object.keys(torchState).filter((k) => k !== 'step').map((k) => STATE_NAMES[k]);
    expect(Object.keys(sd.state[name]).sort()).toEqual(expectedNames.sort());
    for (const [k, v] of Object.entries(torchState)) {
      if (k === 'step') expect(v).toBe(cfg.steps.length);
      else expectClose(sd.state[name][STATE_NAMES[k]], v as number[], `final ${name}.${k}`);
    }
  }
}

describe('clipGradNorm', () => {
  for (const c of clipFixture.cases) {
    const normType = c.normType === 'inf' ? Infinity : c.normType;
    it(`matches torch.nn.utils.clip_grad_norm_ for norm ${c.normType}, max ${c.maxNorm}`, () => {
      const params = c.grads.map((g) => {
        const p = new Parameter([g.length]);
        p.grad = new Tensor(Float32Array.from(g), p.shape, 'float32', p.backend);
        return p;
      });
      const total = clipGradNorm(params, c.maxNorm, normType);
      expectClose([total], [c.totalNorm], 'total norm');
      params.forEach((p, i) => expectClose(p.grad!.data, c.clipped[i], `clipped grad ${i}`));
      // one flat buffer gives the same
      const buf = Float32Array.from(c.grads.flat());
      expectClose([clipGradNorm(buf, c.maxNorm, normType)], [c.totalNorm], 'total norm (flat)');
      expectClose(buf, c.clipped.flat(), 'clipped (flat)');
    });
  }

  it('returns a NaN or infinite norm as is and leaves the gradients alone', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      for (const normType of [2, 1, Infinity]) {
        const g = Float32Array.from([3, 4, bad, 1]);
        const before = g.slice();
        const total = clipGradNorm(g, 1, normType);
        if (Number.isNaN(bad)) expect(total).toBeNaN();
        else expect(total).toBe(Infinity);
        expect(g).toEqual(before);
      }
    }
    expect(clipScale(NaN, 1)).toBe(1);
    expect(clipScale(Infinity, 1)).toBe(1);
  });

  it('leaves gradients below the limit untouched and skips parameters without a gradient', () => {
    const a = new Parameter([2]);
    const b = new Parameter([2]);
    a.grad = new Tensor(Float32Array.from([0.3, 0.4]), [2], 'float32', a.backend);
    expect(clipGradNorm([['a', a], ['b', b]], 1)).toBeCloseTo(0.5, 7);
    expect(Array.from(a.grad.data)).toEqual([Math.fround(0.3), Math.fround(0.4)]);
    expect(b.grad).toBeNull();
    expect(clipScale(0.5, 1)).toBe(1);
    expect(clipScale(4, 1)).toBeCloseTo(1 / (4 + 1e-6), 15);
  });

  it('validates its arguments', () => {
    expect(() => clipGradNorm(new Float32Array(2), 0)).toThrow(/clipGradNorm: maxNorm must be a positive finite number, got 0/);
    expect(() => clipGradNorm(new Float32Array(2), 1, -2)).toThrow(/clipGradNorm: normType must be/);
    expect(() => sumOfSquares(new Float32Array(4), 2, 5)).toThrow(/sumOfSquares: need integers 0 <= lo <= hi <= 4, got \[2, 5\)/);
    expect(() => scaleRange(new Float32Array(4), 2, 3, 1)).toThrow(/scaleRange/);
  });
});

// ---- state dicts ----

/** Deterministic gradients for the state-dict tests (no fixture needed: both sides run Loom). */
function fillGrads(model: Module, step: number): void {
  for (const [name, p] of model.namedParameters()) {
    const g = Float32Array.from(p.data, (v, i) => Math.sin(3 * v + step + i + name.length) + 0.1 * v);
    if (p.grad) (p.grad.storage as Float32Array).set(g);
    else p.grad = new Tensor(g, p.shape, 'float32', p.backend);
  }
}

const init = fixture.configs[0].initial;

describe('optimizer state dicts', () => {
  const kinds: [OptimizerKind, OptionsInput<OptimizerKind>][] = [
    ['sgd', { lr: 0.1, momentum: 0.9, nesterov: true }],
    ['adam', { lr: 0.01, amsgrad: true }],
    ['adamw', { lr: 0.01 }],
    ['adagrad', { lr: 0.1, initialAccumulatorValue: 0.2 }],
  ];

  for (const [kind, options] of kinds) {
    it(`${kind}: resuming from a state dict continues exactly, per-parameter and flat interchangeably`, () => {
      const run = new Toy(init);
      const opt = createOptimizer(kind, run, options as OptionsInput<typeof kind>);
      for (let s = 1; s <= 3; s++) {
        fillGrads(run, s);
        opt.step();
      }
      opt.lr = opt.lr * 0.5; // as a schedule would
      const sd = opt.stateDict();
      const snapshot = structuredClone(sd);

      // a per-parameter optimizer and a flat one, both resumed from the same state
      const resumed = new Toy(Object.fromEntries(run.namedParameters().map(([n, p]) => [n, p.data])));
      const opt2 = createOptimizer(kind, resumed, options as OptionsInput<typeof kind>);
      opt2.loadStateDict(sd);
      const flatModel = new Toy(Object.fromEntries(run.namedParameters().map(([n, p]) => [n, p.data])));
      const flat = flattenParameters(flatModel);
      const opt3 = new FlatOptimizer(flat, kind, options as OptionsInput<typeof kind>);
      opt3.loadStateDict(sd);
      expect(opt3.lr).toBe(opt.lr);
      expect(opt3.stepCount).toBe(3);

      for (let s = 4; s <= 6; s++) {
        for (const m of [run, resumed, flatModel]) fillGrads(m, s);
        opt.step();
        opt2.step();
        opt3.step();
      }
      for (const [name, p] of run.namedParameters()) {
        const q = resumed.namedParameters().find(([n]) => n === name)![1];
        const r = flatModel.namedParameters().find(([n]) => n === name)![1];
        expect(q.data).toEqual(p.data);
        expect(r.data).toEqual(p.data);
      }
      // the flat optimizer's state dict has the per-parameter format, with the same numbers
      expect(opt3.stateDict()).toEqual(opt.stateDict());
      // the earlier snapshot did not move with training
      expect(sd).toEqual(snapshot);
    });
  }

  it('lists every mismatch in one error and changes nothing', () => {
    const model = new Toy(init);
    const opt = new Adam(model, { lr: 0.01 });
    fillGrads(model, 1);
    opt.step();
    const before = opt.stateDict();
    const good = opt.stateDict();
    const bad: OptimizerState = {
      ...good,
      kind: 'adamw',
      step: 2.5,
      state: {
        weight: { expAvg: new Float32Array(12), expAvgSq: new Float32Array(11) },
        bias: { expAvg: new Float32Array(4) },
        extra: { expAvg: new Float32Array(1), expAvgSq: new Float32Array(1) },
      },
    };
    let message = '';
    try {
      opt.loadStateDict(bad);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^Adam\.loadStateDict: the state does not fit this optimizer \(6 problems\)/);
    expect(message).toContain(`kind is 'adamw', this optimizer is 'adam'`);
    expect(message).toContain('step must be a non-negative integer, got 2.5');
    expect(message).toContain(`parameter 'extra' is in the checkpoint but not in this optimizer`);
    expect(message).toContain(`parameter 'gain' is missing from the checkpoint`);
    expect(message).toContain(`'weight'.expAvgSq has 11 values, the parameter has 12`);
    expect(message).toContain(`'bias'.expAvgSq is missing`);
    expect(opt.stateDict()).toEqual(before);

    const sgd = new SGD(model, { lr: 0.1 });
    expect(() => sgd.loadStateDict(new SGD(model, { lr: 0.1, momentum: 0.5 }).stateDict())).toThrow(
      /'weight'\.momentumBuffer is not state of this optimizer \(expected no state\)/,
    );
  });
});

// ---- behaviour beyond the fixtures ----

describe('optimizer behaviour', () => {
  it('skips parameters without a gradient, like torch', () => {
    const model = new Toy(init);
    const opt = new Adam(model, { lr: 0.1 });
    fillGrads(model, 1);
    model.bias.grad = null;
    const bias = model.bias.data.slice();
    opt.step();
    expect(model.bias.data).toEqual(bias);
    expect(opt.stateDict().state.bias.expAvg).toEqual(new Float32Array(4));
    expect(model.weight.data).not.toEqual(Float32Array.from(init.weight));
  });

  it('zeroGrad zeroes flat gradients in place and drops others', () => {
    const a = new Toy(init);
    const flat = flattenParameters(a);
    const opt = new SGD(a, { lr: 0.1 });
    fillGrads(a, 1);
    const view = a.weight.grad;
    opt.zeroGrad();
    expect(a.weight.grad).toBe(view);
    expect(flat.grads.every((v) => v === 0)).toBe(true);

    const b = new Toy(init);
    fillGrads(b, 1);
    new AdamW(b).zeroGrad();
    expect(b.weight.grad).toBeNull();

    fillGrads(a, 2);
    const fo = new FlatOptimizer(flat, 'adagrad', {});
    fo.zeroGrad();
    expect(flat.grads.every((v) => v === 0)).toBe(true);
  });

  it('the flat optimizer never touches the padding between parameters', () => {
    const model = new Toy(init);
    const flat: FlatParameters = flattenParameters(model);
    const inside = new Uint8Array(flat.layout.length);
    for (const e of flat.layout.entries) inside.fill(1, e.offset, e.offset + e.size);
    expect(inside.includes(0)).toBe(true); // the layout has padding
    flat.values.forEach((_, i) => { if (!inside[i]) flat.values[i] = 7; });
    flat.grads.forEach((_, i) => { if (!inside[i]) flat.grads[i] = 1; });
    // eps 0 would turn a zero gradient into 0/0 = NaN: a touched pad would show it
    const opt = new FlatOptimizer(flat, 'adam', { lr: 0.1, eps: 0, weightDecay: 0.5 });
    fillGrads(model, 1);
    opt.step();
    opt.updateRange(3, flat.layout.length - 1);
    flat.values.forEach((v, i) => { if (!inside[i]) expect(v).toBe(7); });
    for (const e of flat.layout.entries) expect(flat.values.subarray(e.offset, e.offset + e.size).every(Number.isFinite)).toBe(true);
  });

  it('Adagrad state starts at initialAccumulatorValue; SGD without momentum keeps no state', () => {
    const model = new Toy(init);
    expect(new Adagrad(model, { initialAccumulatorValue: 0.25 }).stateDict().state.gain.sum).toEqual(new Float32Array(5).fill(0.25));
    expect(new SGD(model, { lr: 1 }).stateDict().state.gain).toEqual({});
    const flat = flattenParameters(new Toy(init));
    const fo = new FlatOptimizer(flat, 'adagrad', { initialAccumulatorValue: 0.25 });
    expect(fo.stateDict().state.gain.sum).toEqual(new Float32Array(5).fill(0.25));
  });

  it('validates options and names the key', () => {
    const model = new Toy(init);
    expect(() => new SGD(model, { lr: -1 })).toThrow('SGD: options.lr must be a positive number, got -1');
    expect(() => new SGD(model, {} as { lr: number })).toThrow('SGD: options.lr is required');
    expect(() => new SGD(model, { lr: 0.1, nesterov: true })).toThrow(/SGD: options.nesterov needs options.momentum > 0 and options.dampening = 0/);
    expect(() => new SGD(model, { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true })).toThrow(/dampening 0.1/);
    expect(() => new SGD(model, { lr: 0.1, weightDecy: 0.1 } as never)).toThrow(`SGD: unknown option 'weightDecy' (known: lr, momentum, dampening, nesterov, weightDecay)`);
    expect(() => new Adam(model, { betas: [0.9, 1] })).toThrow('Adam: options.betas must be two numbers in [0, 1), got [0.9, 1]');
    expect(() => new AdamW(model, { eps: -1 })).toThrow('AdamW: options.eps must be a non-negative number, got -1');
    expect(() => new AdamW(model, { amsgrad: 1 as never })).toThrow('AdamW: options.amsgrad must be a boolean, got 1');
    expect(() => new Adagrad(model, { lrDecay: NaN })).toThrow('Adagrad: options.lrDecay must be a non-negative number, got NaN');
    const opt: Optimizer = new Adam(model);
    expect(opt.options).toEqual({ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false });
    expect(new AdamW(model).options.weightDecay).toBe(1e-2);
    expect(() => (opt.lr = -0.5)).toThrow('Adam: lr must be a non-negative finite number, got -0.5');
    opt.lr = 0; // a schedule may reach zero
    expect(opt.lr).toBe(0);
  });

  it('rejects parameters it cannot update, and bad flat arguments', () => {
    const p = new Parameter([2], { dtype: 'float64' });
    expect(() => new SGD([['p', p]], { lr: 1 })).toThrow(/SGD: parameter 'p' \[2\] is float64 .*float32 host parameters/);
    const q = new Parameter([2]);
    expect(() => new SGD([['a', q], ['b', q]], { lr: 1 })).toThrow(`SGD: parameter 'b' is listed twice (under another name too)`);
    const flat = flattenParameters(new Toy(init));
    const fo = new FlatOptimizer(flat, 'sgd', { lr: 1 });
    expect(() => fo.updateRange(5, flat.layout.length + 1)).toThrow(`FlatOptimizer(sgd).updateRange: need integers 0 <= lo <= hi <= ${flat.layout.length}, got [5, ${flat.layout.length + 1})`);
    expect(() => new FlatOptimizer(flat, 'adam', {}, { state: [new Float32Array(flat.layout.length)] })).toThrow(
      'FlatOptimizer(adam): opts.state has 1 buffers, adam needs 2 (expAvg, expAvgSq)',
    );
    expect(() => new FlatOptimizer(flat, 'nadam' as never, {} as never)).toThrow(/FlatOptimizer: unknown optimizer kind 'nadam'/);
  });
});

describe('updateRanges: an update that skips the ranges whose gradient is zero', () => {
  /** A module of a few parameters, the first a table of rows (as an embedding), with seeded values. */
  class Table extends Module {
    table = new Parameter([40, 7]);
    weight = new Parameter([5, 3]);
    bias = new Parameter([6]);
  }
  function seeded(seed: number): FlatParameters {
    const flat = flattenParameters(new Table());
    let s = seed;
    const rnd = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5;
    for (const e of flat.layout.entries) for (let i = e.offset; i < e.offset + e.size; i++) flat.values[i] = rnd();
    return flat;
  }
  /** Gradients that are zero outside a few table rows (and −0 in one place, which must count as zero). */
  function sparseGrads(flat: FlatParameters, step: number): number[] {
    flat.grads.fill(0);
    const [table, ...dense] = flat.layout.entries;
    const rows = [(3 * step) % 40, (11 + 7 * step) % 40, 39];
    for (const r of rows) for (let j = 0; j < 7; j++) flat.grads[table.offset + r * 7 + j] = Math.sin(step + r + j);
    flat.grads[table.offset + 20 * 7] = -0;
    for (const e of dense) for (let i = e.offset; i < e.offset + e.size; i++) flat.grads[i] = Math.cos(step * 3 + i);
    // The ranges to update: each touched row, and the dense parameters (ascending, merged where adjacent).
    const ranges = [...new Set(rows)].sort((a, b) => a - b).flatMap((r) => [table.offset + r * 7, table.offset + r * 7 + 7]);
    ranges.push(dense[0].offset, flat.layout.length);
    return ranges;
  }
  const bits = (x: Float32Array): Buffer => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

  const cases: [OptimizerKind, OptionsInput<OptimizerKind>, boolean][] = [
    ['sgd', { lr: 0.5 }, true],
    ['sgd', { lr: 0.5, momentum: 0.9 }, false],
    ['sgd', { lr: 0.5, weightDecay: 0.1 }, false],
    ['adam', { lr: 0.01 }, false],
    ['adamw', { lr: 0.01 }, false],
    ['adagrad', { lr: 0.1 }, true],
    ['adagrad', { lr: 0.1, eps: 0 }, false],
    ['adagrad', { lr: 0.1, weightDecay: 0.1 }, false],
  ];
  for (const [kind, options, noop] of cases) {
    it(`${kind} ${JSON.stringify(options)}: zeroGradientIsNoop is ${noop}, which is what a zero-gradient step does`, () => {
      // A zero-gradient step on a fresh optimizer, and one after two dense steps (momentum and moments
      // non-zero). true: both leave values and state bit for bit alone; false: at least one does not.
      const zeroStepChanges = (denseSteps: number): boolean => {
        const flat = seeded(1);
        const opt = new FlatOptimizer(flat, kind, options);
        expect(opt.rule.zeroGradientIsNoop).toBe(noop);
        for (let s = 1; s <= denseSteps; s++) {
          flat.grads.forEach((_, i) => (flat.grads[i] = Math.sin(s + i)));
          opt.updateRange(0, flat.layout.length, 0.8);
        }
        const values = flat.values.slice();
        const state = opt.stateBuffers.map((b) => b.slice());
        flat.grads.fill(0);
        opt.updateRange(0, flat.layout.length, 0.8);
        return !(bits(flat.values).equals(bits(values)) && opt.stateBuffers.every((b, i) => bits(b).equals(bits(state[i]))));
      };
      expect(zeroStepChanges(0) || zeroStepChanges(2)).toBe(!noop);
    });
  }

  it('plain SGD over the non-zero ranges gives bit for bit the update of everything, and one step count', () => {
    const [full, sparse] = [seeded(2), seeded(2)];
    const [a, b] = [new FlatOptimizer(full, 'sgd', { lr: 0.7 }), new FlatOptimizer(sparse, 'sgd', { lr: 0.7 })];
    for (let s = 1; s <= 5; s++) {
      sparseGrads(full, s);
      const ranges = sparseGrads(sparse, s);
      a.updateRange(0, full.layout.length, 0.9);
      b.updateRanges(ranges, 0.9);
      expect(bits(sparse.values).equals(bits(full.values))).toBe(true);
      expect(b.stepCount).toBe(s);
    }
    // ... and the skipped rows really were skipped: updating nothing leaves everything as it was.
    const before = sparse.values.slice();
    b.updateRanges([], 0.9);
    expect(bits(sparse.values).equals(bits(before))).toBe(true);
  });

  it('rejects ranges that are odd in number, out of order or overlapping', () => {
    const flat = seeded(3);
    const opt = new FlatOptimizer(flat, 'sgd', { lr: 1 });
    const L = flat.layout.length;
    expect(() => opt.updateRanges([0, 4, 8])).toThrow('FlatOptimizer(sgd).updateRanges: ranges come in [lo, hi) pairs, got 3 numbers');
    expect(() => opt.updateRanges([8, 12, 4, 6])).toThrow('FlatOptimizer(sgd).updateRanges: ranges must ascend without overlapping, got [4, 6) after one ending at 12');
    expect(() => opt.updateRanges([0, 4, 8, L + 1])).toThrow(`FlatOptimizer(sgd).updateRanges: need integers 0 <= lo <= hi <= ${L}, got [8, ${L + 1})`);
    expect(opt.stepCount).toBe(0);
  });
});
