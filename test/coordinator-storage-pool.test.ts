// recycleStorage (each worker's StoragePool) must not change a single bit of training: an LSTM language
// model trained with and without it, on 1 and 2 workers, gives the same losses step for step. (A buffer
// owned both by the pool and by the recurrent kernels' own scratch pool once made step 3 differ.)
import { describe, expect, it } from 'vitest';
import { Generator } from '@loom/core';
import { Trainer, type StepEvent } from '@loom/coordinator';

const V = 300;
const rng = new Generator(7);
const ids = Int32Array.from({ length: 20 * 160 }, () => rng.int(V));

async function losses(workers: number, recycleStorage: boolean): Promise<number[]> {
  const trainer = new Trainer({
    model: { module: '@loom/models', export: 'RNNLanguageModel', config: { vocabSize: V, embedSize: 32, hiddenSize: 48, numLayers: 2, cell: 'lstm' } },
    data: { train: ids }, optimizer: { kind: 'sgd', lr: 1 }, clipNorm: 5, workers, globalBatch: 20, bptt: 16, maxSteps: 6, recycleStorage,
  }, { log: false, handleSigint: false });
  const out: number[] = [];
  for await (const e of trainer) if (e.type === 'step') out.push((e as StepEvent).loss);
  return out;
}

describe('recycleStorage', () => {
  it.each([1, 2])('%i worker(s): the same losses, bit for bit, with and without the storage pool', async (workers) => {
    const plain = await losses(workers, false);
    const pooled = await losses(workers, true);
    expect(plain).toHaveLength(6);
    expect(pooled).toEqual(plain);
  }, 60_000);
});
