// @loom/backend-tfjs end to end: a 2-layer LSTM language model trained a few SGD steps on TF.js kernels
// reaches the losses and parameters of the default backend from the same start; and the coordinator
// trains with it in its workers (gradients downloaded into the shared all-reduce, values uploaded).
//
// Tolerance: float32 on both sides, but different kernels (the default backend's WebAssembly GEMM with
// FMA and its rational tanh/sigmoid approximations, against TF.js's JavaScript or WebAssembly kernels and
// Math.tanh): each loss within 1e-5 relative, each parameter after the steps within 1e-5 absolute, as
// the coordinator's own equivalence test (measured here: at most 3e-7 relative on the losses and 6e-8 on
// the parameters, on tfjs-cpu and tfjs-wasm, directly and through the coordinator).
import { expect, it } from 'vitest';
import {
  FlatOptimizer, backend, flattenParameters, getBackend, mirrorParameters, setBackend, tensor,
  type Backend, type FlatParameters, type MirroredParameters, type Tensor,
} from '@loom/core';
import { RNNLanguageModel, type RecurrentState } from '@loom/models';
import { Trainer, type StepEvent, type TrainerConfig } from '@loom/coordinator';
import { createTfjsBackend } from '@loom/backend-tfjs';

const V = 17, T = 6, B = 4, STEPS = 5;
// A periodic stream (period 7): a few steps are enough to see the loss fall.
const stream = Int32Array.from({ length: STEPS * T * B + B }, (_, i) => (i * 5) % 7);

/** SGD steps of a 2-layer LSTM LM on one backend: the losses and the parameters after them. */
function train(be: Backend): { losses: number[]; initial: Float32Array; final: Float32Array } {
  const previous = getBackend();
  setBackend(be); // the model's parameters are made (and initialised, through write() on TF.js) here
  try {
    const model = new RNNLanguageModel({ vocabSize: V, embedSize: 8, hiddenSize: 10, numLayers: 2, cell: 'lstm', seed: 5 });
    // The host backends' parameters are views of the flat buffers; TF.js's are mirrored to them.
    const mirror: MirroredParameters | null = be.hostStorage === false ? mirrorParameters(model) : null;
    const flat: FlatParameters = mirror ?? flattenParameters(model);
    const initial = flat.values.slice();
    const opt = new FlatOptimizer(flat, 'sgd', { lr: 1, momentum: 0.5 });
    const losses: number[] = [];
    let state: RecurrentState = model.zeroState(B);
    for (let s = 0; s < STEPS; s++) {
      // Lane b reads its own contiguous part of the stream, window s.
      const at = (t: number, b: number, shift: number): number => stream[b * STEPS * T + s * T + t + shift];
      const ids = tensor(Int32Array.from({ length: T * B }, (_, i) => at(Math.floor(i / B), i % B, 0)), [T, B], { dtype: 'int32' });
      const targets = tensor(Int32Array.from({ length: T * B }, (_, i) => at(Math.floor(i / B), i % B, 1)), [T, B], { dtype: 'int32' });
      const out = model.loss(ids, targets, state);
      out.loss.backward();
      losses.push(out.loss.item());
      mirror?.download();
      opt.step();
      opt.zeroGrad();
      mirror?.upload();
      state = { h: out.state.h.detach(), c: out.state.c!.detach() };
    }
    expect((model.namedParameters()[0][1] as Tensor).backend).toBe(be);
    return { losses, initial, final: flat.values.slice() };
  } finally {
    setBackend(previous);
  }
}

function expectSameTraining(got: ReturnType<typeof train>, want: ReturnType<typeof train>): void {
  expect(got.initial).toEqual(want.initial); // the same start: the same seeded draws, uploaded
  got.losses.forEach((l, i) => expect(Math.abs(l - want.losses[i]) / want.losses[i], `loss ${i}: ${l} vs ${want.losses[i]}`).toBeLessThan(1e-5));
  let worst = 0;
  for (let i = 0; i < want.final.length; i++) worst = Math.max(worst, Math.abs(got.final[i] - want.final[i]));
  expect(worst).toBeLessThan(1e-5);
  expect(want.losses[STEPS - 1]).toBeLessThan(want.losses[0]); // it learns
}

it('an LSTM language model trains to the default backend\'s losses on tfjs-cpu and tfjs-wasm', async () => {
  const reference = train(backend('wasm'));
  expectSameTraining(train(await createTfjsBackend({ runtime: 'tfjs-cpu' })), reference);
  expectSameTraining(train(await createTfjsBackend({ runtime: 'tfjs-wasm' })), reference);
}, 60_000);

const coordinatorConfig = (over: Partial<TrainerConfig>): TrainerConfig => ({
  model: { module: '@loom/models', export: 'RNNLanguageModel', config: { vocabSize: 11, embedSize: 6, hiddenSize: 6, numLayers: 2, cell: 'lstm' } },
  data: { train: Int32Array.from({ length: 4 * 40 }, (_, i) => (i * 3 + (i >> 2)) % 11) },
  optimizer: { kind: 'sgd', lr: 0.5 },
  globalBatch: 4,
  bptt: 5,
  maxSteps: 4,
  ...over,
});

async function coordinatorLosses(cfg: TrainerConfig): Promise<{ losses: number[]; params: Record<string, Float32Array> }> {
  const losses: number[] = [];
  const trainer = new Trainer(cfg, { log: false, onEvent: (e) => void (e.type === 'step' && losses.push((e as StepEvent).loss)) });
  await trainer.run();
  return { losses, params: trainer.parameters() };
}

it('the coordinator trains with backendModule @loom/backend-tfjs/register in every worker, as with the default backend', async () => {
  const want = await coordinatorLosses(coordinatorConfig({ workers: 2 }));
  for (const backendName of ['tfjs-cpu', 'tfjs-wasm']) {
    const got = await coordinatorLosses(coordinatorConfig({ workers: 2, backend: backendName, backendModule: '@loom/backend-tfjs/register' }));
    expect(got.losses).toHaveLength(4);
    got.losses.forEach((l, i) => expect(Math.abs(l - want.losses[i]) / want.losses[i], `${backendName} loss ${i}`).toBeLessThan(1e-5));
    for (const [name, v] of Object.entries(want.params)) {
      let worst = 0;
      v.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - got.params[name][i]))));
      expect(worst, `${backendName} ${name}`).toBeLessThan(1e-5);
    }
  }
}, 120_000);
