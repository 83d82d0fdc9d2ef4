import { DataError } from './errors.js';
import { decodeUtf8, readTextFile } from './text.js';

/** A labelled tree, as in the Stanford Sentiment Treebank: a leaf holds a word, a node its children. */
export type Tree = { label: number; word: string; children?: undefined } | { label: number; children: Tree[]; word?: undefined };

export interface ParseTreeOptions {
  /** Require exactly two children per inner node, as in SST (default true). */
  binary?: boolean;
}

/**
 * Parses one bracketed tree, `(3 (2 It) (4 (2 's) (3 good)))`: '(' label then either one word or
 * child trees, then ')'. Labels are non-negative integers; words are any characters but whitespace
 * and parentheses (SST writes them -LRB- and -RRB-). Iterative, so deep nesting cannot overflow the
 * stack. Errors name the file, line and column.
 */
export function parseTree(text: string, options: ParseTreeOptions & { file?: string; line?: number } = {}): Tree {
  const binary = options.binary ?? true;
  const file = options.file ?? '<tree>';
  const lineNo = options.line ?? 1;
  const fail = (col: number, what: string): never => {
    throw new DataError(what, { file, line: lineNo, column: col + 1 });
  };
  const n = text.length;
  let i = 0;
  const skip = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\r')) i++;
  };
  const atom = () => {
    const s = i;
    while (i < n && text[i] !== '(' && text[i] !== ')' && text[i] !== ' ' && text[i] !== '\t' && text[i] !== '\r') i++;
    return text.slice(s, i);
  };
  // Open nodes: label, children so far, and the column of their '('.
  const stack: { label: number; children: Tree[]; col: number }[] = [];
  let root: Tree | undefined;
  skip();
  if (i >= n) fail(i, "expected '(' to start a tree, got the end of the line");
  while (i < n || stack.length > 0) {
    skip();
    if (i >= n) fail(i, `expected ')' to close the node opened at column ${stack[stack.length - 1].col + 1}, got the end of the line`);
    const c = text[i];
    if (c === '(') {
      if (root !== undefined) fail(i, 'expected the end of the line after the tree');
      const col = i++;
      skip();
      const lab = atom();
      if (!/^\d{1,9}$/.test(lab)) fail(i - lab.length, `expected an integer label after '(', got '${lab.slice(0, 20)}'`);
      skip();
      if (i < n && text[i] !== '(' && text[i] !== ')') {
        const wStart = i;
        const word = atom();
        skip();
        if (i >= n || text[i] !== ')') fail(i, `expected ')' after the word '${word.slice(0, 20)}' (a leaf has one word)`);
        i++;
        const leaf: Tree = { label: Number(lab), word };
        if (word === '') fail(wStart, 'expected a word');
        attach(leaf, col);
      } else {
        stack.push({ label: Number(lab), children: [], col });
      }
    } else if (c === ')') {
      const open = stack.pop();
      if (!open) fail(i, "unexpected ')': no open node");
      if (open!.children.length === 0) fail(i, 'expected a word or child trees before )');
      if (binary && open!.children.length !== 2) fail(open!.col, `expected 2 children (a binary tree), got ${open!.children.length}`);
      i++;
      attach({ label: open!.label, children: open!.children }, open!.col);
    } else {
      fail(i, `expected '(' or ')', got '${c}'`);
    }
    skip();
    if (stack.length === 0 && root !== undefined) break;
  }
  skip();
  if (i < n) fail(i, 'expected the end of the line after the tree');
  return root!;

  function attach(t: Tree, col: number) {
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(t);
    else if (root === undefined) root = t;
    else fail(col, 'expected one tree per line');
  }
}

/** Parses a file of trees, one per line; empty lines are skipped and CRLF accepted. */
export function parseTrees(content: string | Uint8Array, options: ParseTreeOptions & { file?: string } = {}): Tree[] {
  const file = options.file ?? '<trees>';
  const text = typeof content === 'string' ? content : decodeUtf8(content, file);
  const out: Tree[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    out.push(parseTree(lines[i], { ...options, file, line: i + 1 }));
  }
  return out;
}

export function readTrees(file: string, options: ParseTreeOptions = {}): Tree[] {
  return parseTrees(readTextFile(file), { ...options, file });
}

/** Post-order walk (children before parents), iterative. */
export function forEachNode(tree: Tree, visit: (node: Tree) => void): void {
  const stack: [Tree, number][] = [[tree, 0]];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [node, k] = top;
    if (node.children && k < node.children.length) {
      top[1]++;
      stack.push([node.children[k], 0]);
    } else {
      stack.pop();
      visit(node);
    }
  }
}

/** The words at the leaves, left to right: the sentence. */
export function leaves(tree: Tree): string[] {
  const out: string[] = [];
  forEachNode(tree, (n) => {
    if (n.word !== undefined) out.push(n.word);
  });
  return out;
}

/** Every node's phrase (its words) and label, post-order: SST's phrase-level labels. */
export function phrases(tree: Tree): { words: string[]; label: number }[] {
  const out: { words: string[]; label: number }[] = [];
  const words = new Map<Tree, string[]>();
  forEachNode(tree, (n) => {
    const w = n.word !== undefined ? [n.word] : n.children.flatMap((c) => words.get(c)!);
    words.set(n, w);
    out.push({ words: w, label: n.label });
  });
  return out;
}

/** Writes a tree back in the bracketed format; `parseTree(treeToString(t))` equals `t`. */
export function treeToString(tree: Tree): string {
  // Iterative, and one join at the end: joining nested strings per node would be quadratic in depth.
  const out: string[] = [];
  const stack: (Tree | string)[] = [tree];
  while (stack.length > 0) {
    const x = stack.pop()!;
    if (typeof x === 'string') out.push(x);
    else if (x.word !== undefined) out.push(`(${x.label} ${x.word})`);
    else {
      out.push(`(${x.label}`);
      stack.push(')');
      for (let i = x.children.length - 1; i >= 0; i--) stack.push(x.children[i], ' ');
    }
  }
  return out.join('');
}
