// Shared pieces of the coordinator's cross-package tests: a tiny language model and seeded token streams.
import type { StepEvent, TrainerConfig, TrainerEvent } from '@loom/coordinator';

/** A small LSTM language model: fast enough for dozens of steps on several workers. */
export const TINY_LM = {
  module: '@loom/models',
  export: 'RNNLanguageModel',
  config: { vocabSize: 23, embedSize: 8, hiddenSize: 12, numLayers: 1, cell: 'lstm', seed: 5 },
} as const;

/** Seeded ids in [0, vocab): a repetitive pattern with noise, so the model has something to learn. */
export function tokens(n: number, vocab = 23, seed = 1): Int32Array {
  let s = seed;
  const rnd = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return Int32Array.from({ length: n }, (_, i) => (rnd() < 0.8 ? (i * 5 + (i >> 3)) % vocab : Math.floor(rnd() * vocab)));
}

/** A config with the tiny model; `over` replaces keys. Logging goes nowhere unless given. */
export function tinyConfig(over: Partial<TrainerConfig> = {}): TrainerConfig {
  return {
    model: { ...TINY_LM, config: { ...TINY_LM.config } },
    data: { train: tokens(8 * 73) },
    optimizer: { kind: 'sgd', lr: 0.5, momentum: 0.9 },
    globalBatch: 8,
    bptt: 6,
    clipNorm: 0.25,
    faults: { stepTimeoutMs: 20_000, startTimeoutMs: 60_000 },
    ...over,
  };
}

/** Collects events by type. */
export class Recorder {
  readonly events: TrainerEvent[] = [];
  readonly lines: string[] = [];
  readonly onEvent = (e: TrainerEvent): void => void this.events.push(e);
  readonly log = (line: string): void => void this.lines.push(line);

  get steps(): StepEvent[] {
    return this.events.filter((e): e is StepEvent => e.type === 'step');
  }

  of<T extends TrainerEvent['type']>(type: T): Extract<TrainerEvent, { type: T }>[] {
    return this.events.filter((e) => e.type === type) as Extract<TrainerEvent, { type: T }>[];
  }
}
