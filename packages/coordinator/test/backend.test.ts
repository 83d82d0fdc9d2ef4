/*
 * The workers' backend is a setting: a plug-in backend module registers itself when imported (in the
 * coordinator and in every worker) and is chosen by name; nothing in the coordinator changes.
 */
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { Trainer, type TrainerConfig, type StepEvent } from '../src/index.js';

const ids = Int32Array.from({ length: 4 * 40 }, (_, i) => (i * 3 + (i >> 2)) % 11);
const config = (over: Partial<TrainerConfig>): TrainerConfig => ({
  model: { module: '@loom/models', export: 'RNNLanguageModel', config: { vocabSize: 11, embedSize: 6, hiddenSize: 6, numLayers: 1, cell: 'gru' } },
  data: { train: ids },
  optimizer: { kind: 'sgd', lr: 0.5 },
  workers: 2,
  globalBatch: 4,
  bptt: 5,
  maxSteps: 4,
  ...over,
});

async function losses(cfg: TrainerConfig): Promise<number[]> {
  const out: number[] = [];
  await new Trainer(cfg, { log: false, onEvent: (e) => void (e.type === 'step' && out.push((e as StepEvent).loss)) }).run();
  return out;
}

test('a backend from a plug-in module runs in every worker and gives what its kernels give', async () => {
  const plugin = fileURLToPath(new URL('./fixtures/counting-backend.ts', import.meta.url));
  const [viaPlugin, reference] = [await losses(config({ backend: 'counting', backendModule: plugin })), await losses(config({ backend: 'reference' }))];
  expect(viaPlugin).toHaveLength(4);
  expect(viaPlugin).toEqual(reference);
}, 60_000);

test('an unknown backend is refused before any worker starts', async () => {
  await expect(new Trainer(config({ backend: 'nonesuch' }), { log: false }).run()).rejects.toThrow(/^backend: unknown backend 'nonesuch'; known: reference, wasm/);
}, 30_000);
