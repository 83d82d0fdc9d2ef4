import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BABI_TASKS, babiExamples, babiTask, babiTaskFile, DataError, leaves, listTextFiles, parseBabi, parseParallel, parseTree,
  parseTrees, parseTsvPairs, phrases, readBabiTask, readParallel, readTrees, readTsvPairs, treeToString,
} from '@loom/data';
import { tempDir, writeFile } from './helpers.js';

const dir = tempDir();

// The exact layout of en/qa1_single-supporting-fact_train.txt: "ID text", questions with a space
// before the first tab, IDs restarting at 1 for a new story.
const QA1 = `1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary? \tbathroom\t1
4 Daniel went back to the hallway.
5 Sandra moved to the garden.
6 Where is Daniel? \thallway\t4
1 Sandra travelled to the office.
2 Sandra went to the bathroom.
3 Where is Sandra? \tbathroom\t2
`;
// qa8 (lists, comma-separated answers, several supporting IDs) and qa19 (no space before the tab).
const QA8 = `1 Mary got the football there.
2 Mary took the apple there.
3 What is Mary carrying? \tfootball,apple\t1 2
`;
const QA19 = `1 The office is east of the hallway.
2 The kitchen is north of the office.
3 How do you go from the kitchen to the hallway?\ts,w\t2 1
`;

describe('bAbI', () => {
  it('parses stories, restarting at ID 1, with questions seeing only earlier statements', () => {
    const stories = parseBabi(QA1);
    expect(stories.length).toBe(2);
    expect(stories[0].lines[2]).toEqual({ kind: 'question', id: 3, text: 'Where is Mary?', answers: ['bathroom'], supporting: [1] });
    const ex = babiExamples(stories);
    expect(ex.length).toBe(3);
    expect(ex[1]).toEqual({
      story: ['Mary moved to the bathroom.', 'John went to the hallway.', 'Daniel went back to the hallway.', 'Sandra moved to the garden.'],
      storyIds: [1, 2, 4, 5],
      question: 'Where is Daniel?',
      answers: ['hallway'],
      supporting: [4],
      supportingIndices: [2],
    });
    expect(ex[2].story).toEqual(['Sandra travelled to the office.', 'Sandra went to the bathroom.']);
  });

  it('reads list answers and several supporting facts', () => {
    expect(babiExamples(parseBabi(QA8))[0]).toMatchObject({ answers: ['football', 'apple'], supporting: [1, 2], supportingIndices: [0, 1] });
    expect(babiExamples(parseBabi(QA19))[0]).toMatchObject({ question: 'How do you go from the kitchen to the hallway?', answers: ['s', 'w'], supporting: [2, 1] });
  });

  it('accepts CRLF, empty lines and a missing final newline', () => {
    const crlf = QA1.replace(/\n/g, '\r\n').replace('3 Where is Mary', '\r\n3 Where is Mary').trimEnd();
    expect(parseBabi(crlf)).toEqual(parseBabi(QA1));
  });

  it('names file, line and what was expected for malformed lines', () => {
    expect(() => parseBabi('1 a.\n3 b.\n', 'qa.txt')).toThrow(/qa\.txt:2:1: line ID 3: expected 2 \(the next in this story\) or 1/);
    expect(() => parseBabi('2 a.\n', 'qa.txt')).toThrow(/qa\.txt:1:1: line ID 2: expected 1/);
    expect(() => parseBabi('x a.\n', 'qa.txt')).toThrow(/qa\.txt:1:1: expected 'ID text'/);
    expect(() => parseBabi('1 a.\n2 q?\tans\n', 'qa.txt')).toThrow(/qa\.txt:2: expected 'ID question<TAB>answer<TAB>supporting IDs' \(3 tab-separated fields\), got 2/);
    expect(() => parseBabi('1 a.\n2 q?\tans\t5\n', 'qa.txt')).toThrow(/qa\.txt:2: supporting IDs '5': expected IDs of statements before line 2/);
    expect(() => parseBabi('1 a.\n2 q?\tans\t2\n', 'qa.txt')).toThrow(DataError);
    expect(() => parseBabi('1 a.\n2 q?\t\t1\n', 'qa.txt')).toThrow(/expected an answer/);
  });

  it('finds the 20 tasks by number and name in both folder layouts', () => {
    expect(BABI_TASKS.length).toBe(20);
    expect(babiTask(8)).toEqual({ id: 8, name: 'lists-sets' });
    expect(babiTask('qa19')).toEqual({ id: 19, name: 'path-finding' });
    expect(babiTask('agents-motivations').id).toBe(20);
    expect(() => babiTask(21)).toThrow(/unknown task 21/);
    writeFile(dir, 'en/qa1_single-supporting-fact_train.txt', QA1);
    writeFile(dir, 'en-valid/qa1_valid.txt', QA1);
    expect(readBabiTask(path.join(dir, 'en'), 1, 'train').length).toBe(3);
    expect(babiTaskFile(path.join(dir, 'en-valid'), 'single-supporting-fact', 'valid')).toBe(path.join(dir, 'en-valid', 'qa1_valid.txt'));
    expect(() => babiTaskFile(path.join(dir, 'en'), 2, 'test')).toThrow(/no test file for task 2 \(two-supporting-facts\)/);
  });
});

// The exact layout of sst/dev.txt: one binarised tree per line, labels 0-4 on every node.
const SST = `(3 (2 It) (4 (4 (2 's) (4 (3 (2 a) (4 (3 lovely) (2 film))) (3 (2 with) (3 (3 lovely) (2 performances))))) (2 .)))
(2 (2 (1 No) (2 one)) (1 (2 goes) (2 .)))
`;

describe('bracketed trees (SST)', () => {
  it('parses nested labelled binary trees, with leaves and phrase labels', () => {
    const [t, u] = parseTrees(SST);
    expect(leaves(t)).toEqual(["It", "'s", 'a', 'lovely', 'film', 'with', 'lovely', 'performances', '.']);
    expect(t.label).toBe(3);
    expect(t.children![0]).toEqual({ label: 2, word: 'It' });
    const ph = phrases(u);
    expect(ph[ph.length - 1]).toEqual({ words: ['No', 'one', 'goes', '.'], label: 2 });
    expect(ph.length).toBe(7); // 4 leaves + 3 inner nodes
    expect(ph[0]).toEqual({ words: ['No'], label: 1 });
    for (const line of SST.trim().split('\n')) expect(treeToString(parseTree(line))).toBe(line);
  });

  it('skips empty lines and accepts CRLF; a single leaf is a tree', () => {
    expect(parseTrees('\n' + SST.replace(/\n/g, '\r\n') + '\r\n\r\n')).toEqual(parseTrees(SST));
    expect(parseTree('(1 word)')).toEqual({ label: 1, word: 'word' });
  });

  it('handles deep nesting without recursion', () => {
    const depth = 20_000;
    const line = '(1 '.repeat(depth) + '(2 x)' + ' (0 y))'.repeat(depth);
    const t = parseTree(line);
    expect(leaves(t).length).toBe(depth + 1);
    expect(treeToString(t)).toBe(line);
  });

  it('names file, line and column for malformed trees', () => {
    const bad = (text: string) => () => parseTrees(text, { file: 'dev.txt' });
    expect(bad('(3 (2 a) (2 b)\n')).toThrow(/dev\.txt:1:15: expected '\)' to close the node opened at column 1/);
    expect(bad('(2 a)\n(x (2 a) (2 b))\n')).toThrow(/dev\.txt:2:2: expected an integer label after '\(', got 'x'/);
    expect(bad('(2 (2 a) (2 b) (2 c))')).toThrow(/dev\.txt:1:1: expected 2 children \(a binary tree\), got 3/);
    expect(bad('(2 a b)')).toThrow(/dev\.txt:1:6: expected '\)' after the word 'a'/);
    expect(bad('(2 a))')).toThrow(/dev\.txt:1:6: expected the end of the line/);
    expect(bad('(2 a) (2 b)')).toThrow(/expected the end of the line after the tree/);
    expect(bad('(2)')).toThrow(/expected a word or child trees/);
    expect(parseTree('(2 (1 a) (1 b) (1 c))', { binary: false }).children!.length).toBe(3);
  });

  it('reads a file', () => {
    expect(readTrees(writeFile(dir, 'sst/dev.txt', SST)).length).toBe(2);
  });
});

describe('sentence pairs', () => {
  it('reads Tatoeba tab-separated pairs, with or without attribution', () => {
    const text = 'Go.\tVa !\nRun!\tCours\u202f!\n\nHi.\tSalut !\tCC-BY 2.0 (France) Attribution: tatoeba.org #538123 (CM)\r\n';
    const pairs = parseTsvPairs(text);
    expect(pairs).toEqual([
      { source: 'Go.', target: 'Va !' },
      { source: 'Run!', target: 'Cours\u202f!' },
      { source: 'Hi.', target: 'Salut !', attribution: 'CC-BY 2.0 (France) Attribution: tatoeba.org #538123 (CM)' },
    ]);
    expect(readTsvPairs(writeFile(dir, 'fra.txt', text)).length).toBe(3);
  });

  it('names the line of a malformed pair', () => {
    expect(() => parseTsvPairs('Go.\tVa !\nno tab here\n', 'fra.txt')).toThrow(/fra\.txt:2: expected 'source<TAB>target'.*got 1 tab-separated field$/);
    expect(() => parseTsvPairs('Go.\t\n', 'fra.txt')).toThrow(/fra\.txt:1:5: expected a target sentence/);
  });

  it('pairs line-aligned Multi30k files and refuses different line counts', () => {
    const en = writeFile(dir, 'train.en', 'Two young, White males are outside near many bushes.\nA little girl climbing into a wooden playhouse.\n');
    const fr = writeFile(dir, 'train.fr', 'Deux jeunes hommes blancs sont dehors près de buissons.\r\nUne petite fille grimpe dans une maisonnette en bois.');
    expect(readParallel(en, fr)[1]).toEqual({ source: 'A little girl climbing into a wooden playhouse.', target: 'Une petite fille grimpe dans une maisonnette en bois.' });
    expect(() => parseParallel('a\nb\n', 'a\n', { source: 'val.en', target: 'val.fr' })).toThrow(/line counts differ: 2 lines in val\.en but 1 in val\.fr/);
  });
});

describe('plain text files and folders', () => {
  it('lists a folder recursively in sorted order, with an optional glob', () => {
    const root = path.join(dir, 'corpus');
    for (const f of ['b.txt', 'a.txt', 'sub/c.txt', 'sub/deeper/d.md', '.hidden.txt', 'A.txt']) writeFile(root, f, 'x\n');
    const rel = (files: string[]) => files.map((f) => path.relative(root, f).split(path.sep).join('/'));
    expect(rel(listTextFiles(root))).toEqual(['A.txt', 'a.txt', 'b.txt', 'sub/c.txt', 'sub/deeper/d.md']);
    expect(rel(listTextFiles(root, { pattern: '**/*.txt' }))).toEqual(['A.txt', 'a.txt', 'b.txt', 'sub/c.txt']);
    expect(rel(listTextFiles(root, { pattern: '*.txt' }))).toEqual(['A.txt', 'a.txt', 'b.txt']);
    expect(listTextFiles(path.join(root, 'a.txt'))).toEqual([path.join(root, 'a.txt')]);
    expect(() => listTextFiles(path.join(root, 'missing'))).toThrow(DataError);
  });
});
