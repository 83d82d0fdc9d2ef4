// Perplexity of a checkpoint on a corpus (docs/training.md):
//   pnpm eval runs/NAME-STAMP                      the run's test split
//   pnpm eval runs/NAME-STAMP/checkpoints/ckpt-00001000.loom --data=some/text.txt
import { runMain } from './lib/cli.js';
import { evalMain } from './lib/eval-main.js';

runMain(async () => {
  await evalMain(process.argv.slice(2));
});
