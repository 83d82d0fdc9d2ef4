// eval-babi's results (scripts/lib/babi-table.ts): the table, and merging per-task runs over disjoint task sets.
import { describe, expect, test } from 'vitest';
import { babiMarkdown, mergeBabiResults, type BabiResult } from '../scripts/lib/babi-table.js';
import { ConfigError } from '../scripts/lib/config.js';

const config = {
  data: '../shared/data/babi', set: 'en-10k', joint: false, batching: 'task', runs: 1, epochs: 100, decayevery: 0, lsepochs: 0,
  lspatience: 0, lr: 0.01, lslr: 0.005, dim: 20, hops: 3, memory: 50, empty: 'attend', encoding: 'position', tying: 'adjacent',
  temporal: true, ls: true, noise: 0.1, select: true, seed: 1, verbose: false, decayEvery: 25, lsEpochs: 20,
};

/** A partial result as eval-babi writes it for `tasks`, with test error `error(task)`. */
function part(tasks: number[], error: (t: number) => number, extra: { out: string; seconds: number; notes?: string[]; verbose?: boolean }): BabiResult {
  const command = `pnpm eval:babi -- --set=en-10k --tasks=${tasks.join(',')} --out=${extra.out}`;
  return {
    command,
    config: { ...config, verbose: extra.verbose ?? false, tasks, out: extra.out },
    seconds: extra.seconds,
    notes: extra.notes ?? [],
    meanError: 0, failedTasks: 0, // not read by the merge: recomputed
    paper: {},
    tasks: tasks.map((t) => ({ task: t, name: `task-${t}`, testError: error(t), chosenRun: 0, runs: [{ seed: 1, testErrors: { [t]: error(t) } }] })),
  };
}

const odd = part([1, 3, 5, 7, 9, 11, 13, 15, 17, 19], (t) => (t === 17 ? 0.4 : 0.01), { out: '/tmp/babi10k/odd', seconds: 100, notes: ['qa3: stand-in training file.'] });
const even = part([2, 4, 6, 8, 10, 12, 14, 16, 18, 20], (t) => (t === 2 ? 0.1 : 0), { out: '/tmp/babi10k/even', seconds: 50, verbose: true });
const mergeCommand = { command: 'pnpm eval:babi -- --merge=/tmp/babi10k/odd.json,/tmp/babi10k/even.json', out: '', merge: '/tmp/babi10k/odd.json,/tmp/babi10k/even.json' };
const files = (...results: BabiResult[]) => results.map((result, i) => ({ file: `part${i + 1}.json`, result }));

describe('merging per-task results', () => {
  test('the result of one run over all the tasks: tasks in order, seconds summed, notes concatenated, summary recomputed', () => {
    const m = mergeBabiResults(files(even, odd), mergeCommand);
    expect(m.tasks.map((t) => t.task)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(m.tasks[16]).toEqual(odd.tasks[8]); // task 17, runs and all
    expect(m.seconds).toBe(150);
    expect(m.notes).toEqual(['qa3: stand-in training file.']);
    expect(m.meanError).toBeCloseTo((9 * 0.01 + 0.4 + 0.1) / 20, 12);
    expect(m.failedTasks).toBe(2);
    expect(m.config).toMatchObject({ set: 'en-10k', joint: false, lr: 0.01, tasks: m.tasks.map((t) => t.task), out: '', merge: mergeCommand.merge });
    expect(m.command).toBe(mergeCommand.command);
    expect(m.parts).toEqual([
      { command: even.command, tasks: even.config.tasks, seconds: 50 },
      { command: odd.command, tasks: odd.config.tasks, seconds: 100 },
    ]);
    expect(Object.keys(m.paper)).toEqual(['en-10k/joint']);
  });

  test('the table is headed by the parts\' commands and the merge command, and says whose the paper column is', () => {
    const md = babiMarkdown(mergeBabiResults(files(odd, even), mergeCommand));
    expect(md.startsWith(['```sh', odd.command, even.command, mergeCommand.command, '```', ''].join('\n'))).toBe(true);
    expect(md).toContain('150 s on this machine (the sum of the 2 parts\').');
    expect(md).toContain("The paper's column is its joint model's");
    expect(md).toContain('| task | ours (per task, 10k) | paper 10k PE LS RN joint |');
    expect(md).toContain('| 17: task-17 | 40.0 | 41.8 |');
    expect(md).toContain('| **mean error (%)** | **3.0** | 7.5 |');
    expect(md).toContain('| **failed tasks (error > 5%)** | **2** | 6 |');
    expect(md).toContain('Note: qa3: stand-in training file.');
  });

  test('a merge of a merge lists every command that trained', () => {
    const [a, b] = [part([1], () => 0, { out: 'a', seconds: 1 }), part([2], () => 0, { out: 'b', seconds: 2 })];
    const ab = mergeBabiResults(files(a, b), { command: 'merge ab', out: 'ab', merge: 'a.json,b.json' });
    const abc = mergeBabiResults(files(ab, part([3], () => 0, { out: 'c', seconds: 4 })), { command: 'merge abc', out: '', merge: 'ab.json,c.json' });
    expect(abc.parts!.map((p) => p.tasks)).toEqual([[1], [2], [3]]);
    expect(abc.seconds).toBe(7);
  });

  test('more runs of a task (other seeds, other parts) keep the best by validation error, then loss; the caption says how many', () => {
    const run = (seed: number, validError: number, validLoss: number, test: number) => ({ seed, validError, validLoss, testErrors: { 17: test } });
    const first = { ...odd, tasks: odd.tasks.map((t) => (t.task === 17 ? { ...t, testError: 0.4, runs: [run(1, 0.3, 1.0, 0.4)] } : t)) };
    const more: BabiResult = {
      ...part([17], () => 0, { out: '/tmp/babi10k/extra', seconds: 30 }),
      config: { ...config, tasks: [17], out: '/tmp/babi10k/extra', runs: 2, seed: 2 },
    };
    more.tasks = [{ task: 17, name: 'task-17', testError: 0.35, chosenRun: 1, runs: [run(2, 0.32, 0.9, 0.45), run(3, 0.3, 0.8, 0.35)] }];
    const m = mergeBabiResults(files(first, even, more), mergeCommand);
    const t17 = m.tasks.find((t) => t.task === 17)!;
    expect(t17.runs).toHaveLength(3);
    expect(t17.chosenRun).toBe(2); // seed 3: the same validation error as seed 1, a lower loss
    expect(t17.testError).toBe(0.35);
    expect(m.tasks.length).toBe(20);
    expect(m.meanError).toBeCloseTo((9 * 0.01 + 0.35 + 0.1) / 20, 12);
    expect(babiMarkdown(m)).toContain('best of the runs made for each task (3 runs for task 17; 1 run for tasks 1, 2,');
    expect(babiMarkdown(mergeBabiResults(files(odd, even), mergeCommand))).toContain('best of 1 run by validation error');
  });

  test('refuses overlapping tasks, other options, other sets, joint results and a single file, naming the files', () => {
    const overlap = part([19, 20], () => 0, { out: 'x', seconds: 1 });
    expect(() => mergeBabiResults(files(even, overlap), mergeCommand)).toThrow(ConfigError);
    expect(() => mergeBabiResults(files(even, overlap), mergeCommand)).toThrow('task 20 was run with seed 1 in both part1.json and part2.json');
    const lr = { ...odd, config: { ...odd.config, lr: 0.02, hops: 2 } };
    expect(() => mergeBabiResults(files(even, lr), mergeCommand)).toThrow('part1.json and part2.json were run with different options: lr (0.01 and 0.02), hops (3 and 2); only tasks and out may differ');
    const en = { ...odd, config: { ...odd.config, set: 'en' } };
    expect(() => mergeBabiResults(files(even, en), mergeCommand)).toThrow('part1.json is --set=en-10k but part2.json is --set=en');
    const joint = { ...odd, config: { ...odd.config, joint: true } };
    expect(() => mergeBabiResults(files(even, joint), mergeCommand)).toThrow('part2.json is a joint result');
    expect(() => mergeBabiResults(files(even), mergeCommand)).toThrow('needs at least two result files');
    expect(() => mergeBabiResults([...files(even), { file: 'other.json', result: { hello: 1 } as unknown as BabiResult }], mergeCommand)).toThrow('other.json is not a result of eval-babi');
  });
});

describe('the table of one run', () => {
  test('headed by its command inline, the paper columns of its set', () => {
    const one = { ...part([1, 2], () => 0, { out: 'o', seconds: 12.4 }), config: { ...config, set: 'en', tasks: [1, 2], out: 'o' } };
    const md = babiMarkdown(one);
    expect(md.startsWith(`\`${one.command}\`\n\nbAbI 1k (\`en/\`), test error (%) per task, MemN2N 3 hops, adjacent tying, PE + temporal LS RN, d = 20, one model per task, best of 1 run`)).toBe(true);
    expect(md).toContain('12 s on this machine.\n');
    expect(md).toContain('| task | ours (per task, 1k) | paper 1k PE LS RN (per task) | paper 1k PE LS RN joint |');
    expect(md).not.toContain("The paper's column is its joint model's");
  });
});
