// Text generated from a checkpoint (docs/training.md):
//   pnpm sample runs/NAME-STAMP --prompt='ROMEO:' --length=500 --temperature=0.8 --topK=20
import { runMain } from './lib/cli.js';
import { sampleMain } from './lib/sample-main.js';

runMain(async () => {
  await sampleMain(process.argv.slice(2));
});
