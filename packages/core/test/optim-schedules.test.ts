/*
 * Learning-rate schedules against the lr sequences of torch 1.13's schedulers (fixtures/optim/
 * schedules.json, from make_optim_fixtures.py): StepLR, ExponentialLR, Zaremba's epoch decay (torch's
 * LambdaLR), ReduceLROnPlateau on fixed metric sequences, warmup + cosine (LambdaLR) and plain
 * CosineAnnealingLR.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Module, Parameter } from '../src/nn/module.js';
import {
  EpochDecayLR, ExponentialLR, ReduceLROnPlateau, SGD, StepLR, WarmupCosine,
  type HasLr, type LRSchedule, type PlateauOptions,
} from '../src/optim/index.js';

interface Case {
  name: string;
  kind: 'step' | 'exponential' | 'epochDecay' | 'plateau' | 'warmupCosine';
  options: Record<string, unknown>;
  baseLr: number;
  metrics: number[] | null;
  lrs: number[];
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/optim/schedules.json', import.meta.url), 'utf8')) as { cases: Case[] };

function make(c: Case, opt: HasLr): LRSchedule {
  const o = c.options as never;
  switch (c.kind) {
    case 'step': return new StepLR(opt, o);
    case 'exponential': return new ExponentialLR(opt, o);
    case 'epochDecay': return new EpochDecayLR(opt, o);
    case 'plateau': return new ReduceLROnPlateau(opt, o as Partial<PlateauOptions>);
    case 'warmupCosine': return new WarmupCosine(opt, o);
  }
}

/** Relative agreement; the closed forms and torch's recursive products differ by rounding only. */
function expectLr(actual: number, expected: number, what: string): void {
  if (!(Math.abs(actual - expected) <= 1e-9 * Math.abs(expected) + 1e-15)) expect.fail(`${what}: lr ${actual}, torch ${expected}`);
}

class One extends Module {
  w = new Parameter([1]);
}

describe('schedules follow torch', () => {
  it('covers the schedules the issue names', () => {
    const kinds = new Set(fixture.cases.map((c) => c.kind));
    for (const k of ['step', 'exponential', 'epochDecay', 'plateau', 'warmupCosine']) expect(kinds).toContain(k);
  });

  for (const c of fixture.cases) {
    it(`${c.name}`, () => {
      const opt = new SGD(new One(), { lr: c.baseLr });
      const sched = make(c, opt);
      expectLr(opt.lr, c.lrs[0], 'initial');
      for (let e = 1; e < c.lrs.length; e++) {
        const lr = c.metrics ? sched.step(c.metrics[e - 1]) : sched.step();
        expect(lr).toBe(opt.lr);
        expectLr(opt.lr, c.lrs[e], `after step ${e}`);
      }
      expect(sched.last).toBe(c.lrs.length - 1);
    });
  }

  it("Zaremba's small and medium configurations decay when the paper says", () => {
    const small = new EpochDecayLR({ lr: 1 }, { constantEpochs: 4, factor: 0.5 });
    expect([0, 1, 2, 3, 4, 5, 12].map((e) => small.lrAt(e))).toEqual([1, 1, 1, 1, 0.5, 0.25, 0.5 ** 9]);
    const medium = new EpochDecayLR({ lr: 1 }, { constantEpochs: 6, factor: 1 / 1.2 });
    expect(medium.lrAt(5)).toBe(1);
    expect(medium.lrAt(6)).toBeCloseTo(1 / 1.2, 15);
    expect(medium.unit).toBe('epoch');
    expect(new WarmupCosine({ lr: 1 }, { warmupSteps: 2, totalSteps: 4 }).unit).toBe('step');
  });
});

describe('schedule state dicts', () => {
  it('a resumed schedule continues the same sequence', () => {
    const metrics = fixture.cases.find((c) => c.name === 'plateau-min-rel')!.metrics!;
    const mk = (opt: HasLr): LRSchedule[] => [
      new ReduceLROnPlateau(opt, { factor: 0.5, patience: 1, cooldown: 2 }),
    ];
    const a = { lr: 0.1 };
    const [pa] = mk(a);
    for (let e = 0; e < 7; e++) pa.step(metrics[e]);
    const saved = structuredClone(pa.stateDict());
    const b = { lr: a.lr }; // the optimizer's own state dict carries the lr
    const [pb] = mk(b);
    pb.loadStateDict(saved);
    for (let e = 7; e < metrics.length; e++) expect(pb.step(metrics[e])).toBe(pa.step(metrics[e]));

    const c = { lr: 0.1 };
    const wc = new WarmupCosine(c, { warmupSteps: 3, totalSteps: 20, minLr: 0.001 });
    for (let s = 0; s < 8; s++) wc.step();
    const d = { lr: 999 }; // a fresh optimizer built from the config has its own lr; the schedule's base comes from the state
    const wd = new WarmupCosine(d, { warmupSteps: 3, totalSteps: 20, minLr: 0.001 });
    wd.loadStateDict(structuredClone(wc.stateDict()));
    for (let s = 8; s < 25; s++) expect(wd.step()).toBe(wc.step());
  });

  it('rejects another schedule\'s state', () => {
    const s = new StepLR({ lr: 1 }, { stepSize: 2 });
    expect(() => s.loadStateDict(new ExponentialLR({ lr: 1 }, { gamma: 0.5 }).stateDict())).toThrow(
      `StepLR.loadStateDict: expected a 'step' schedule state, got 'exponential'`,
    );
    const p = new ReduceLROnPlateau({ lr: 1 });
    expect(() => p.loadStateDict({ kind: 'plateau', last: 1, best: 0.5, numBadEpochs: -1, cooldownCounter: 0 })).toThrow(
      'ReduceLROnPlateau.loadStateDict: numBadEpochs must be a non-negative integer, got -1',
    );
  });
});

describe('schedule behaviour', () => {
  it('ReduceLROnPlateau never counts a NaN metric as an improvement, and needs a metric', () => {
    const opt = { lr: 1 };
    const p = new ReduceLROnPlateau(opt, { patience: 0, factor: 0.5 });
    p.step(NaN);
    expect(opt.lr).toBe(0.5);
    expect(p.best).toBeNull();
    p.step(3);
    expect(p.best).toBe(3);
    expect(() => p.step()).toThrow(`ReduceLROnPlateau.step: needs the epoch's metric (a number), got undefined`);
  });

  it('validates options and names the key', () => {
    const opt = { lr: 0.1 };
    expect(() => new StepLR(opt, { stepSize: 0 })).toThrow('StepLR: options.stepSize must be an integer >= 1, got 0');
    expect(() => new ExponentialLR(opt, { gamma: -1 })).toThrow('ExponentialLR: options.gamma must be a positive number, got -1');
    expect(() => new EpochDecayLR(opt, { constantEpochs: 1.5, factor: 0.5 })).toThrow('EpochDecayLR: options.constantEpochs must be an integer >= 0, got 1.5');
    expect(() => new WarmupCosine(opt, { warmupSteps: 5, totalSteps: 5 })).toThrow('WarmupCosine: options.totalSteps must be an integer >= 6, got 5');
    expect(() => new WarmupCosine(opt, { warmupSteps: 0, totalSteps: 5, minLr: 1 })).toThrow(`WarmupCosine: options.minLr (1) must not exceed the optimizer's lr (0.1)`);
    expect(() => new ReduceLROnPlateau(opt, { factor: 1 })).toThrow('ReduceLROnPlateau: options.factor must be below 1, got 1');
    expect(() => new ReduceLROnPlateau(opt, { mode: 'up' as never })).toThrow(`ReduceLROnPlateau: options.mode must be 'min' or 'max', got 'up'`);
    expect(() => new StepLR(opt, { stepSize: 2, gama: 0.5 } as never)).toThrow(`StepLR: unknown option 'gama' (known: stepSize, gamma)`);
    expect(opt.lr).toBe(0.1); // failed constructions leave the optimizer alone
  });
});
