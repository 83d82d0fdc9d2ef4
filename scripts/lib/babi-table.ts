/*
 * The bAbI results of scripts/eval-babi.ts: the JSON it writes, the Markdown table beside the paper's
 * figures, and the merge of partial results (one process per disjoint set of tasks) into the result one
 * process over all of them would have written.
 */
import { ConfigError } from './config.js';

// The paper's test error (%) per task (Sukhbaatar et al. 2015, Table 1 and its appendix; 3 hops, adjacent
// tying). Its 10k per-task figures are not transcribed: a 10k per-task table shows the joint model's.
export const PAPER = {
  // 1k, per task, PE LS RN: mean 13.9, 11 failed.
  'en/per-task': [0.0, 8.3, 40.3, 2.8, 13.1, 7.6, 17.3, 10.0, 13.2, 15.1, 0.9, 0.2, 0.4, 1.7, 0.0, 1.3, 51.0, 11.1, 82.8, 0.0],
  // 1k, joint, PE LS RN: mean 12.4, 11 failed.
  'en/joint': [0.0, 11.4, 21.9, 13.4, 14.4, 2.8, 18.3, 9.3, 1.9, 6.5, 0.3, 0.1, 0.2, 6.9, 0.0, 2.7, 40.4, 9.4, 88.0, 0.0],
  // 10k, joint, PE LS RN: mean 7.5, 6 failed.
  'en-10k/joint': [0.0, 1.0, 6.8, 0.0, 6.1, 0.1, 6.6, 2.7, 0.0, 0.5, 0.0, 0.1, 0.0, 0.0, 0.2, 0.2, 41.8, 8.0, 75.7, 0.0],
} as const;
export type PaperKey = keyof typeof PAPER;
const PAPER_LABEL: Record<PaperKey, string> = {
  'en/per-task': 'paper 1k PE LS RN (per task)',
  'en/joint': 'paper 1k PE LS RN joint',
  'en-10k/joint': 'paper 10k PE LS RN joint',
};

/** The paper's columns for a set ('en' or 'en-10k'). */
export function paperColumns(set: string): PaperKey[] {
  return (Object.keys(PAPER) as PaperKey[]).filter((k) => k.startsWith(`${set}/`));
}

/** The resolved options of a run, as eval-babi prints and saves them (the table reads these keys). */
export interface BabiConfig {
  set: string;
  joint: boolean;
  tasks: number[];
  out: string;
  runs: number;
  hops: number;
  tying: string;
  encoding: string;
  temporal: boolean;
  ls: boolean;
  noise: number;
  batching: string;
  dim: number;
  [key: string]: unknown;
}

export interface BabiTaskResult {
  task: number;
  name: string;
  /** Test error of the chosen run, 0..1. */
  testError: number;
  chosenRun: number;
  /** Per task: every run (RunResult of eval-babi); joint runs are in BabiResult.jointRuns. */
  runs?: unknown[];
}

/** The JSON eval-babi writes beside its table. */
export interface BabiResult {
  /** The command that wrote this result (for a merge, the merge command). */
  command: string;
  /** A merge: the results merged, in the order given. */
  parts?: { command: string; tasks: number[]; seconds: number }[];
  config: BabiConfig;
  /** Wall time of the run; a merge: the sum of its parts'. */
  seconds: number;
  notes: string[];
  meanError: number;
  failedTasks: number;
  paper: Partial<Record<PaperKey, readonly number[]>>;
  tasks: BabiTaskResult[];
  jointRuns?: unknown[];
}

/** The paper's failure threshold: a task fails with a test error above 5 %. */
const FAILED = 0.05;

export function summarise(tasks: readonly BabiTaskResult[]): { meanError: number; failedTasks: number } {
  return {
    meanError: tasks.reduce((s, t) => s + t.testError, 0) / tasks.length,
    failedTasks: tasks.filter((t) => t.testError > FAILED).length,
  };
}

/** The Markdown eval-babi prints and writes: the command(s), a caption, the table beside the paper's columns, notes. */
export function babiMarkdown(r: BabiResult): string {
  const c = r.config;
  const size = c.set === 'en' ? '1k' : '10k';
  const cols = paperColumns(c.set);
  const pct = (x: number): string => (100 * x).toFixed(1);
  const header = ['task', `ours (${c.joint ? 'joint' : 'per task'}, ${size})`, ...cols.map((k) => PAPER_LABEL[k])];
  const rows = r.tasks.map((t) => [`${t.task}: ${t.name}`, pct(t.testError), ...cols.map((k) => PAPER[k][t.task - 1].toFixed(1))]);
  const paperOn = (k: PaperKey): number[] => r.tasks.map((t) => PAPER[k][t.task - 1]);
  const { meanError, failedTasks } = summarise(r.tasks);
  rows.push(['**mean error (%)**', `**${pct(meanError)}**`, ...cols.map((k) => (paperOn(k).reduce((s, x) => s + x, 0) / r.tasks.length).toFixed(1))]);
  rows.push(['**failed tasks (error > 5%)**', `**${failedTasks}**`, ...cols.map((k) => String(paperOn(k).filter((x) => x > 100 * FAILED).length))]);
  // One command inline, as every single run's table has been headed; a merge lists its parts' commands, then its own.
  const commands = r.parts ? [...r.parts.map((p) => p.command), r.command] : [r.command];
  const head = commands.length === 1 ? [`\`${commands[0]}\``] : ['```sh', ...commands, '```'];
  const time = r.parts ? `${r.seconds.toFixed(0)} s on this machine (the sum of the ${r.parts.length} parts').` : `${r.seconds.toFixed(0)} s on this machine.`;
  const jointOnly = !c.joint && !cols.some((k) => k.endsWith('/per-task')) && cols.length > 0
    ? ` The paper's column is its joint model's (one model for all 20 tasks), the only ${size} figures of the paper transcribed here; ours trains one model per task.`
    : '';
  return [
    ...head,
    '',
    `bAbI ${size} (\`${c.set}/\`), test error (%) per task, MemN2N ${c.hops} hops, ${c.tying} tying, ` +
      `${c.encoding === 'position' ? 'PE' : 'BoW'}${c.temporal ? ' + temporal' : ''}${c.ls ? ' LS' : ''}${c.noise > 0 ? ' RN' : ''}, ` +
      `d = ${c.dim}, ${c.joint ? `one model for all tasks (batches ${c.batching === 'task' ? 'drawn from one task each' : 'drawn from all tasks'})` : 'one model per task'}, ${runsCaption(r)} by validation error ` +
      `(the paper: best of 10). ${time}${jointOnly}`,
    '',
    `| ${header.join(' | ')} |`,
    `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
    ...(r.notes.length ? ['', ...r.notes.map((n) => `Note: ${n}`)] : []),
    '',
  ].join('\n');
}

/** "best of 3 runs", or for a merge whose tasks had different numbers of runs, which tasks had how many. */
function runsCaption(r: BabiResult): string {
  const counts = runCounts(r);
  const plural = (n: number): string => `${n} run${n > 1 ? 's' : ''}`;
  if (counts.every((n) => n === counts[0])) return `best of ${plural(counts[0])}`;
  const byCount = new Map<number, number[]>();
  r.tasks.forEach((t, i) => byCount.set(counts[i], [...(byCount.get(counts[i]) ?? []), t.task]));
  const groups = [...byCount.entries()].sort((x, y) => y[0] - x[0]).map(([n, ts]) => `${plural(n)} for task${ts.length > 1 ? 's' : ''} ${ts.join(', ')}`);
  return `best of the runs made for each task (${groups.join('; ')})`;
}

/**
 * Options that may differ between the parts of a merge: which tasks each ran and where it wrote, how much
 * it logged, and the merge option itself (absent from results written before it existed).
 */
const PER_PART = new Set(['tasks', 'out', 'verbose', 'merge', 'runs', 'seed']);

/** What eval-babi records of one per-task training run. */
interface TaskRun {
  seed: number;
  validError: number;
  validLoss: number;
  testErrors: Record<number, number>;
}

/** The run kept: the lowest validation error, then the lowest validation loss (eval-babi's rule for --runs). */
function bestRun(runs: readonly TaskRun[]): number {
  let best = 0;
  for (let i = 1; i < runs.length; i++) {
    const a = runs[best], b = runs[i];
    if (b.validError < a.validError || (b.validError === a.validError && b.validLoss < a.validLoss)) best = i;
  }
  return best;
}

/** Runs per task of a result (a task without a runs list counts the config's). */
function runCounts(r: BabiResult): number[] {
  return r.tasks.map((t) => t.runs?.length ?? r.config.runs);
}

/**
 * Merges per-task results into the result of one run over all their tasks (tasks in order, seconds summed,
 * notes concatenated). A task in several parts (more runs of it, with other seeds) keeps the best of all
 * its runs by validation error, then loss, as --runs does; the table says how many runs each task had.
 * Refuses joint results (the parts would be different models), parts whose options differ (other than
 * PER_PART), and the same task and seed in two parts; each error names the files. `config` of the merge is
 * the first part's with the union of tasks, `out` and `merge`.
 */
export function mergeBabiResults(
  parts: readonly { file: string; result: BabiResult }[], merge: { command: string; out: string; merge: string },
): BabiResult {
  if (parts.length < 2) throw new ConfigError(`eval-babi: --merge needs at least two result files, got ${parts.length}`);
  for (const { file, result } of parts) {
    if (typeof result?.command !== 'string' || typeof result.config !== 'object' || !Array.isArray(result.tasks)) {
      throw new ConfigError(`eval-babi: --merge: ${file} is not a result of eval-babi (no command, config and tasks)`);
    }
  }
  const [first, ...rest] = parts;
  const a = first.result.config;
  const joint = parts.find((p) => p.result.config.joint);
  if (joint) {
    throw new ConfigError(`eval-babi: --merge: ${joint.file} is a joint result; joint models trained on different tasks are different models, so their tables do not merge into one joint model's`);
  }
  for (const { file, result } of rest) {
    const b = result.config;
    if (b.set !== a.set) throw new ConfigError(`eval-babi: --merge: ${first.file} is --set=${a.set} but ${file} is --set=${b.set}`);
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => !PER_PART.has(k));
    const differ = keys.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
    if (differ.length) {
      const list = differ.map((k) => `${k} (${JSON.stringify(a[k])} and ${JSON.stringify(b[k])})`).join(', ');
      throw new ConfigError(`eval-babi: --merge: ${first.file} and ${file} were run with different options: ${list}; only tasks and out may differ`);
    }
  }
  const byTask = new Map<number, { task: BabiTaskResult; file: string; runs: TaskRun[] }>();
  const seedOwner = new Map<string, string>();
  for (const { file, result } of parts) {
    for (const t of result.tasks) {
      const runs = (t.runs ?? []) as TaskRun[];
      for (const run of runs) {
        const key = `${t.task}/${run.seed}`;
        const other = seedOwner.get(key);
        if (other !== undefined) throw new ConfigError(`eval-babi: --merge: task ${t.task} was run with seed ${run.seed} in both ${other} and ${file}`);
        seedOwner.set(key, file);
      }
      const seen = byTask.get(t.task);
      if (!seen) {
        byTask.set(t.task, { task: t, file, runs: [...runs] });
        continue;
      }
      if (!runs.length || !seen.runs.length) throw new ConfigError(`eval-babi: --merge: task ${t.task} is in both ${seen.file} and ${file}, and one of them has no runs to choose from`);
      seen.runs.push(...runs);
    }
  }
  const tasks: BabiTaskResult[] = [...byTask.values()].sort((x, y) => x.task.task - y.task.task).map(({ task, runs }) => {
    if (runs.length <= (task.runs?.length ?? 0)) return task; // in one part only
    const chosenRun = bestRun(runs);
    return { ...task, testError: runs[chosenRun].testErrors[task.task], chosenRun, runs };
  });
  // A part that is itself a merge contributes its own parts, so every command that trained is listed.
  const merged = parts.flatMap(({ result }) => result.parts ?? [{ command: result.command, tasks: result.tasks.map((t) => t.task), seconds: result.seconds }]);
  return {
    command: merge.command,
    parts: merged,
    config: { ...a, tasks: tasks.map((t) => t.task), out: merge.out, merge: merge.merge },
    seconds: merged.reduce((s, p) => s + p.seconds, 0),
    notes: [...new Set(parts.flatMap((p) => p.result.notes ?? []))], // a task run in two parts notes the same thing twice
    ...summarise(tasks),
    paper: Object.fromEntries(paperColumns(a.set).map((k) => [k, PAPER[k]])),
    tasks,
  };
}
