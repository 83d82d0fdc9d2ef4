// WikiText-2 (Merity et al. 2016; 2.09 M training tokens, vocabulary 33,278 with <eos>) with the
// hyperparameters of Zaremba's small model (configs/zaremba-small.ts). This is the config of the quality
// comparison with PyTorch (reference/word_lm.py, docs/training.md).
//
//   pnpm train wikitext2                                   expects data.root = ../shared/data/wikitext-2
//   pnpm train wikitext2 --data.root=path/to/wikitext-2    a folder with train.txt, valid.txt, test.txt
//                                                          (the raw wiki.{train,valid,test}.tokens renamed)
import type { PartialConfig } from '../scripts/lib/config.js';
import small from './zaremba-small.js';

export default {
  ...small,
  name: 'wikitext2',
  data: { root: '../shared/data/wikitext-2', train: 'train.txt', valid: 'valid.txt', test: 'test.txt', tokenizer: 'word', eos: true },
} satisfies PartialConfig;
