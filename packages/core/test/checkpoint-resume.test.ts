import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import {
  Adam, Generator, Linear, Module, fromFunction, loadCheckpoint, loadStateDict, saveCheckpoint, stateDict, type OptimizerState,
} from '../src/index.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), 'loom-ckpt-resume-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

class Mlp extends Module {
  l1: Linear;
  l2: Linear;
  constructor(seed: number) {
    super();
    const g = new Generator(seed);
    this.l1 = new Linear(5, 8, { generator: g });
    this.l2 = new Linear(8, 2, { generator: g });
  }
}

/** One Adam step on a batch drawn from `data`: the generator is part of what a resume must restore. */
function trainStep(model: Mlp, opt: Adam, data: Generator): void {
  const x = fromFunction([4, 5], () => data.normal()); // (B, D)
  const y = fromFunction([4, 2], () => data.uniform(-1, 1));
  opt.zeroGrad();
  const out = model.l2.forward(model.l1.forward(x).tanh()); // (B, 2)
  out.sub(y).pow(2).mean().backward();
  opt.step();
}

describe('resuming from a checkpoint', () => {
  it('continues exactly as the uninterrupted run: parameters, Adam state and data generator', async () => {
    const model = new Mlp(1);
    const opt = new Adam(model, { lr: 0.01 });
    const data = new Generator(77);
    for (let i = 0; i < 3; i++) trainStep(model, opt, data);
    const path = join(dir, 'resume.loom');
    await saveCheckpoint(path, {
      step: 3,
      config: { lr: 0.01 },
      params: stateDict(model),
      optimizer: opt.stateDict(),
      generators: { data: data.getState() },
    });
    for (let i = 0; i < 4; i++) trainStep(model, opt, data);

    const resumed = new Mlp(2); // different initial values, overwritten by the checkpoint
    const opt2 = new Adam(resumed, { lr: 0.01 });
    const ckpt = await loadCheckpoint(path);
    loadStateDict(resumed, ckpt.params);
    opt2.loadStateDict(ckpt.optimizer as OptimizerState);
    const data2 = new Generator(0).setState(ckpt.generators!.data);
    expect(opt2.stepCount).toBe(3);
    for (let i = 0; i < 4; i++) trainStep(resumed, opt2, data2);

    const want = model.namedParameters();
    resumed.namedParameters().forEach(([name, p], i) => {
      expect(name).toBe(want[i][0]);
      expect(Array.from(p.data)).toEqual(Array.from(want[i][1].data)); // float32 values, compared exactly
    });
  });
});
