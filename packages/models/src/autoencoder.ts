/*
 * A sequence autoencoder (Dai & Le 2015): the encoder-decoder trained to reproduce its input, so that the
 * encoder's final state becomes a fixed-size code for the whole sequence (a pretraining signal, or
 * sentence vectors). Source and target share one vocabulary and one embedding table.
 */
import { type DType, type Tensor } from '@loom/core';
import { type CellKind, type RecurrentState } from './recurrent/index.js';
import { Seq2Seq } from './seq2seq.js';
import { checkSequenceLengths } from './checks.js';

export interface SequenceAutoencoderConfig {
  vocabSize: number;
  embedSize: number;
  hiddenSize: number;
  cell: CellKind;
  /** Default 1. */
  numLayers?: number;
  /** Default 0. */
  dropout?: number;
  bos: number;
  eos: number;
  pad: number;
  /** Default 0. */
  seed?: number;
  /** Default float32. */
  dtype?: DType;
}

export interface AutoencoderOptions {
  /** Lengths of the sequences in ids [T, B], each in [1, T]. Default: all T. */
  lengths?: readonly number[] | null;
  /** As Seq2SeqOptions.teacherForcing. Default 1. */
  teacherForcing?: number;
}

/** A Seq2Seq whose target is its input; parameters as Seq2Seq's with the embedding shared. */
export class SequenceAutoencoder extends Seq2Seq {
  constructor(config: SequenceAutoencoderConfig) {
    const { vocabSize, ...rest } = config;
    super({ ...rest, srcVocabSize: vocabSize, tgtVocabSize: vocabSize, shareEmbeddings: true }, 'SequenceAutoencoder');
  }

  /** The reconstruction target of ids [T, B]: each entry, up to its length, followed by EOS, padded with PAD. */
  reconstructionTarget(ids: Tensor, lengths?: readonly number[] | null): Tensor {
    const [T, B] = ids.shape;
    const lens = checkSequenceLengths('SequenceAutoencoder', lengths, T, B) ?? new Array<number>(B).fill(T);
    const d = ids.data;
    const seqs = lens.map((n, b) => Array.from({ length: n }, (_, t) => d[t * B + b]));
    return this.targets(seqs);
  }

  /** Mean cross-entropy of reproducing ids [T, B] (then EOS). */
  reconstructionLoss(ids: Tensor, opts: AutoencoderOptions = {}): Tensor {
    const tgt = this.reconstructionTarget(ids, opts.lengths);
    return this.loss(ids, tgt, { srcLengths: opts.lengths ?? null, teacherForcing: opts.teacherForcing });
  }

  /** The code of each sequence: the encoder's final state ([L, B, H] h, and c for LSTM). */
  code(ids: Tensor, lengths?: readonly number[] | null): RecurrentState {
    return this.encode(ids, lengths).state;
  }

  /** Greedy reconstructions, one token array per batch entry (maxLen defaults to T + 1). */
  reconstruct(ids: Tensor, opts: { lengths?: readonly number[] | null; maxLen?: number } = {}): number[][] {
    return this.greedyDecode(ids, { srcLengths: opts.lengths ?? null, maxLen: opts.maxLen ?? ids.shape[0] + 1 });
  }
}

