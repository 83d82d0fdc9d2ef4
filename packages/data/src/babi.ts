import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from './errors.js';
import { decodeUtf8, readTextFile } from './text.js';

/** A statement or question line of a bAbI story. */
export type BabiLine =
  | { kind: 'statement'; id: number; text: string }
  | { kind: 'question'; id: number; text: string; answers: string[]; supporting: number[] };

/** One story: its lines in order (IDs 1, 2, 3, ...). */
export interface BabiStory {
  lines: BabiLine[];
}

/**
 * One question with its story, as memory networks consume them: the story is the statements before
 * the question in the same story (earlier questions are left out), in order.
 */
export interface BabiExample {
  /** Statements before the question. */
  story: string[];
  /** The line ID of each statement in `story`. */
  storyIds: number[];
  question: string;
  /** One answer, or several for list tasks (qa8 "football,apple") and path finding (qa19 "s,e"). */
  answers: string[];
  /** Line IDs of the supporting statements. */
  supporting: number[];
  /** Indices into `story` of the supporting statements. */
  supportingIndices: number[];
}

/** The 20 tasks of bAbI v1.2 (Weston et al. 2015), by number. */
export const BABI_TASKS: readonly { id: number; name: string }[] = [
  'single-supporting-fact', 'two-supporting-facts', 'three-supporting-facts', 'two-arg-relations',
  'three-arg-relations', 'yes-no-questions', 'counting', 'lists-sets', 'simple-negation',
  'indefinite-knowledge', 'basic-coreference', 'conjunction', 'compound-coreference', 'time-reasoning',
  'basic-deduction', 'basic-induction', 'positional-reasoning', 'size-reasoning', 'path-finding',
  'agents-motivations',
].map((name, i) => ({ id: i + 1, name }));

/**
 * Parses a bAbI file: `ID text` statement lines and `ID question<TAB>answer<TAB>supporting IDs` question
 * lines. An ID of 1 starts a new story; any other ID must follow the previous one. Empty lines are
 * skipped, CRLF is accepted, a trailing space before the question's tab is trimmed.
 */
export function parseBabi(content: string | Uint8Array, file = '<babi>'): BabiStory[] {
  const text = typeof content === 'string' ? content : decodeUtf8(content, file);
  const stories: BabiStory[] = [];
  let story: BabiStory | undefined;
  const lines = text.split('\n');
  for (let ln = 0; ln < lines.length; ln++) {
    let line = lines[ln];
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.trim() === '') continue;
    const where = { file, line: ln + 1 };
    const m = /^(\d{1,9}) (.*)$/s.exec(line);
    if (!m) throw new DataError(`expected 'ID text' or 'ID question<TAB>answer<TAB>supporting IDs', got '${clip(line)}'`, { ...where, column: 1 });
    const id = Number(m[1]);
    const prev = story ? story.lines.length : 0;
    if (id === 1) {
      story = { lines: [] };
      stories.push(story);
    } else if (!story || id !== prev + 1) {
      throw new DataError(`line ID ${id}: expected ${prev + 1} (the next in this story) or 1 (a new story)`, { ...where, column: 1 });
    }
    const rest = m[2];
    const fields = rest.split('\t');
    if (fields.length === 1) {
      const t = rest.trim();
      if (t === '') throw new DataError('expected statement text after the ID', { ...where, column: m[1].length + 2 });
      story!.lines.push({ kind: 'statement', id, text: t });
      continue;
    }
    if (fields.length !== 3) {
      throw new DataError(`expected 'ID question<TAB>answer<TAB>supporting IDs' (3 tab-separated fields), got ${fields.length}`, where);
    }
    const question = fields[0].trim();
    if (question === '') throw new DataError('expected question text before the first tab', where);
    const answers = fields[1].trim() === '' ? [] : fields[1].trim().split(',');
    if (answers.length === 0 || answers.some((a) => a === '')) throw new DataError(`expected an answer (or comma-separated answers), got '${clip(fields[1])}'`, where);
    const supText = fields[2].trim();
    const supporting = supText === '' ? [] : supText.split(/\s+/).map(Number);
    for (const s of supporting) {
      const target = Number.isInteger(s) && s >= 1 && s < id ? story!.lines[s - 1] : undefined;
      if (!target || target.kind !== 'statement') {
        throw new DataError(`supporting IDs '${clip(supText)}': expected IDs of statements before line ${id} in this story`, where);
      }
    }
    story!.lines.push({ kind: 'question', id, text: question, answers, supporting });
  }
  return stories;
}

/** One example per question (see BabiExample). */
export function babiExamples(stories: readonly BabiStory[]): BabiExample[] {
  const out: BabiExample[] = [];
  for (const s of stories) {
    const story: string[] = [];
    const storyIds: number[] = [];
    const indexOf = new Map<number, number>();
    for (const line of s.lines) {
      if (line.kind === 'statement') {
        indexOf.set(line.id, story.length);
        story.push(line.text);
        storyIds.push(line.id);
      } else {
        out.push({
          story: story.slice(),
          storyIds: storyIds.slice(),
          question: line.text,
          answers: line.answers,
          supporting: line.supporting,
          supportingIndices: line.supporting.map((id) => indexOf.get(id)!),
        });
      }
    }
  }
  return out;
}

export function readBabi(file: string): BabiStory[] {
  return parseBabi(readTextFile(file), file);
}

/** Resolves a task by number (1-20), by name ('lists-sets') or as 'qa8'. */
export function babiTask(task: number | string): { id: number; name: string } {
  const t =
    typeof task === 'number'
      ? BABI_TASKS[task - 1]
      : BABI_TASKS.find((x) => x.name === task || `qa${x.id}` === task || `qa${x.id}_${x.name}` === task);
  if (!t) throw new DataError(`babiTask: unknown task ${JSON.stringify(task)}: expected 1-20, 'qa1'-'qa20' or a name such as '${BABI_TASKS[0].name}'`);
  return t;
}

/**
 * The path of a task's file inside one of the bAbI folders: `en/`, `en-10k/` name files
 * `qa8_lists-sets_train.txt`; `en-valid/`, `en-valid-10k/` name them `qa8_train.txt` (and have `valid`).
 */
export function babiTaskFile(dir: string, task: number | string, split: 'train' | 'test' | 'valid'): string {
  const t = babiTask(task);
  const candidates = [path.join(dir, `qa${t.id}_${t.name}_${split}.txt`), path.join(dir, `qa${t.id}_${split}.txt`)];
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new DataError(`babiTaskFile: no ${split} file for task ${t.id} (${t.name}): expected ${candidates.join(' or ')}`, { file: dir });
  return found;
}

/** Reads one task's examples from a bAbI folder. */
export function readBabiTask(dir: string, task: number | string, split: 'train' | 'test' | 'valid'): BabiExample[] {
  return babiExamples(readBabi(babiTaskFile(dir, task, split)));
}

function clip(s: string): string {
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}
