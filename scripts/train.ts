// Trains a recurrent language model from a config (docs/training.md).
//
//   pnpm train                                   the tiny character model on Tiny Shakespeare (configs/tiny-shakespeare.ts)
//   pnpm train zaremba-small --data.root=DIR     a config from configs/, with overrides
//   pnpm train my-config.json --lr=0.5           a config file (.ts default export or .json)
//   pnpm train --resume runs/NAME-STAMP          continue a run from its newest checkpoint
//   pnpm train --help                            every key, its type and default
//
// It prepares the corpus (cached), trains with N workers, evaluates on validation data every epoch, writes
// checkpoints, evaluates on test data at the end, prints a sample, and leaves everything in a run folder.
import { runMain } from './lib/cli.js';
import { train } from './lib/train-main.js';

runMain(async () => (await train(process.argv.slice(2))).code);
