/*
 * The checkpoint file format, version 1. Integers in the header are little-endian.
 *
 *   offset   size  field
 *   0        8     magic "LOOMCKPT"
 *   8        4     format version, u32 = 1
 *   12       4     checksum algorithm, u32: 1 = SHA-256 (a 32-byte trailer)
 *   16       8     payload length N in bytes, u64
 *   24       4     byte-order mark: the u32 0x01020304 in the writer's byte order. Typed arrays are stored
 *                  as their raw bytes, so a reader of the other byte order refuses instead of misreading.
 *   28       4     header check: the first 4 bytes of SHA-256(bytes 0..27), so a damaged length field is
 *                  reported as damage rather than as a truncated file
 *   32       N     payload: the Checkpoint object as MessagePack (msgpackr; maps, not msgpackr records, so
 *                  any MessagePack reader can walk it; typed arrays are extension 0x74: a type byte, then
 *                  the raw element bytes, so values round-trip bit for bit, NaN payloads and -0 included)
 *   32+N     32    SHA-256 of bytes 0 .. 32+N (header and payload)
 *
 * Encoding and decoding are pure functions over bytes; checkpoint.ts does the file work.
 */
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import { Packr } from 'msgpackr';
import { Tensor } from '../tensor.js';
import { fmtShape } from '../errors.js';
import type { GeneratorState } from '../random.js';

/** A checkpoint could not be saved or loaded. Messages name the file (or function) and what is wrong. */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

export interface ParamEntry {
  shape: number[];
  dtype: 'float32' | 'float64';
  data: Float32Array | Float64Array;
}

export interface Checkpoint {
  format: 'loom-checkpoint';
  version: 1;
  /** ISO time of the save. */
  createdAt: string;
  step: number;
  /** The resolved training config (plain data). */
  config: unknown;
  /** Parameter values by dotted name, in namedParameters() order. */
  params: Record<string, ParamEntry>;
  /** An optimizer's stateDict(): plain data holding typed arrays. */
  optimizer?: unknown;
  /** Generator.getState() of each named generator. */
  generators?: Record<string, GeneratorState>;
  /** Anything else a run needs to resume: data position, hidden states, schedule state, metrics. */
  extra?: Record<string, unknown>;
}

/** What a caller hands to saveCheckpoint: format, version and createdAt are filled in. */
export type CheckpointInput = Omit<Checkpoint, 'format' | 'version' | 'createdAt'> &
  Partial<Pick<Checkpoint, 'format' | 'version' | 'createdAt'>>;

export const MAGIC = 'LOOMCKPT';
export const FORMAT_VERSION = 1;
export const HEADER_BYTES = 32;
export const CHECKSUM_SHA256 = 1;
export const TRAILER_BYTES = 32;
const BYTE_ORDER_MARK = 0x01020304;
const FIELDS = ['format', 'version', 'createdAt', 'step', 'config', 'params', 'optimizer', 'generators', 'extra'];
const MAX_LISTED = 20;

/*
 * moreTypes: typed arrays (and Set, Date, bigint) keep their types. useRecords: false writes standard
 * MessagePack maps. One Packr serves every checkpoint; it is synchronous, so saves cannot interleave in it.
 */
const packr = new Packr({ moreTypes: true, useRecords: false, mapsAsObjects: true, int64AsType: 'bigint' });

/**
 * Checks `input`, then returns the file's bytes as [header, payload, trailer] (written in that order).
 * The payload is packed synchronously, so the file holds the values as they were at this call even if
 * the caller changes them while the bytes are being written. `what` prefixes error messages.
 */
export function encodeCheckpoint(input: CheckpointInput, what: string, now = new Date()): Uint8Array[] {
  const problems: string[] = [];
  if (typeof input !== 'object' || input === null) throw new CheckpointError(`${what}: expected a checkpoint object, got ${describe(input)}`);
  for (const k of Object.keys(input)) {
    if (!FIELDS.includes(k)) problems.push(`unknown field '${k}' (expected ${FIELDS.join(', ')})`);
  }
  const ckpt: Record<string, unknown> = {
    format: 'loom-checkpoint',
    version: FORMAT_VERSION,
    createdAt: now.toISOString(),
    step: input.step,
    config: input.config,
    params: input.params,
  };
  for (const k of ['optimizer', 'generators', 'extra'] as const) if (input[k] !== undefined) ckpt[k] = input[k];
  checkStructure(ckpt, problems);
  for (const k of ['config', 'optimizer', 'generators', 'extra']) {
    if (ckpt[k] !== undefined) checkPlainData(ckpt[k], k, problems, new Set());
  }
  if (problems.length) throw new CheckpointError(`${what}: ${listProblems(problems)}`);

  const payload = packr.pack(ckpt);
  // msgpackr keeps its output buffer for the next pack; hand it a small one so a large checkpoint's
  // buffer is freed once written instead of staying alive for the rest of the process.
  packr.useBuffer(Buffer.allocUnsafeSlow(8192));

  const header = Buffer.alloc(HEADER_BYTES);
  header.write(MAGIC, 0, 'latin1');
  header.writeUInt32LE(FORMAT_VERSION, 8);
  header.writeUInt32LE(CHECKSUM_SHA256, 12);
  header.writeUInt32LE(payload.length % 2 ** 32, 16);
  header.writeUInt32LE(Math.floor(payload.length / 2 ** 32), 20);
  new Uint32Array(header.buffer, header.byteOffset + 24, 1)[0] = BYTE_ORDER_MARK; // native byte order on purpose
  headerCheck(header).copy(header, 28);
  const trailer = createHash('sha256').update(header).update(payload).digest();
  return [header, payload, trailer];
}

/**
 * Reads the fixed header (the first HEADER_BYTES of a file of `fileSize` bytes) and returns the expected
 * file size; throws CheckpointError when the header is not a version-1 Loom header or the size is wrong.
 * Called before reading the rest of a file, so a truncated or foreign file is refused cheaply.
 */
export function checkHeader(head: Uint8Array, fileSize: number, path: string): number {
  const at = `checkpoint ${path}`;
  const magic = Buffer.from(MAGIC, 'latin1');
  const shown = Math.min(head.length, magic.length);
  if (!Buffer.from(head.buffer, head.byteOffset, shown).equals(magic.subarray(0, shown))) {
    throw new CheckpointError(`${at} is not a Loom checkpoint: it does not start with "${MAGIC}"`);
  }
  if (fileSize < HEADER_BYTES || head.length < HEADER_BYTES) {
    throw new CheckpointError(`${at} is truncated: expected at least ${HEADER_BYTES} bytes (the header), found ${fileSize}`);
  }
  const h = Buffer.from(head.buffer, head.byteOffset, HEADER_BYTES);
  const version = h.readUInt32LE(8);
  if (!headerCheck(h).equals(h.subarray(28, 32))) {
    throw new CheckpointError(
      version === FORMAT_VERSION
        ? `${at} is corrupted: header checksum mismatch`
        : `${at} has format version ${version} or a damaged header; this build of @loom/core reads version ${FORMAT_VERSION}`,
    );
  }
  if (version !== FORMAT_VERSION) {
    throw new CheckpointError(`${at} has format version ${version}; this build of @loom/core reads version ${FORMAT_VERSION}`);
  }
  const algorithm = h.readUInt32LE(12);
  if (algorithm !== CHECKSUM_SHA256) throw new CheckpointError(`${at} names an unknown checksum algorithm ${algorithm} (1 is SHA-256)`);
  const bom = h.readUInt32LE(24);
  const writer = bom === BYTE_ORDER_MARK ? 'LE' : bom === 0x04030201 ? 'BE' : null;
  if (writer === null) throw new CheckpointError(`${at} is corrupted: bad byte-order mark 0x${bom.toString(16)}`);
  if (writer !== endianness()) {
    throw new CheckpointError(`${at} was written on a ${writer === 'LE' ? 'little' : 'big'}-endian machine; this one is ${endianness() === 'LE' ? 'little' : 'big'}-endian`);
  }
  const payloadLength = h.readUInt32LE(16) + h.readUInt32LE(20) * 2 ** 32;
  const expected = HEADER_BYTES + payloadLength + TRAILER_BYTES;
  if (fileSize < expected) throw new CheckpointError(`${at} is truncated: expected ${expected} bytes, found ${fileSize}`);
  if (fileSize > expected) throw new CheckpointError(`${at} is corrupted: expected ${expected} bytes, found ${fileSize} (data after the end)`);
  return expected;
}

/** Verifies a whole checkpoint file's bytes (header, checksum, structure) and decodes it. */
export function decodeCheckpoint(bytes: Uint8Array, path: string): Checkpoint {
  const at = `checkpoint ${path}`;
  const expected = checkHeader(bytes.subarray(0, HEADER_BYTES), bytes.length, path);
  const body = bytes.subarray(0, expected - TRAILER_BYTES);
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(bytes.subarray(expected - TRAILER_BYTES, expected))) {
    throw new CheckpointError(`${at} is corrupted: checksum mismatch (SHA-256 of header and payload)`);
  }
  let value: unknown;
  try {
    value = packr.unpack(bytes.subarray(HEADER_BYTES, expected - TRAILER_BYTES));
  } catch (e) {
    // The checksum matched, so the writer produced this: a bug, not disk damage. Still refused.
    throw new CheckpointError(`${at} has a payload that is not valid MessagePack: ${(e as Error).message}`, { cause: e });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CheckpointError(`${at} is not a valid checkpoint: the payload is ${describe(value)}, expected an object`);
  }
  const problems: string[] = [];
  const c = value as Record<string, unknown>;
  if (c.format !== 'loom-checkpoint') problems.push(`format is ${describe(c.format)}, expected 'loom-checkpoint'`);
  if (c.version !== FORMAT_VERSION) problems.push(`version is ${describe(c.version)}, expected ${FORMAT_VERSION}`);
  if (typeof c.createdAt !== 'string') problems.push(`createdAt is ${describe(c.createdAt)}, expected an ISO time string`);
  for (const k of Object.keys(c)) if (!FIELDS.includes(k)) problems.push(`unknown field '${k}'`);
  checkStructure(c, problems);
  if (problems.length) throw new CheckpointError(`${at} is not a valid checkpoint: ${listProblems(problems)}`);
  return value as Checkpoint;
}

function headerCheck(header: Buffer): Buffer {
  return createHash('sha256').update(header.subarray(0, 28)).digest().subarray(0, 4);
}

/** The fields every checkpoint has, checked the same way on save and on load. */
function checkStructure(c: Record<string, unknown>, problems: string[]): void {
  if (!Number.isSafeInteger(c.step) || (c.step as number) < 0) problems.push(`step is ${describe(c.step)}, expected a non-negative integer`);
  if (!('config' in c)) problems.push('config is missing (store the resolved config, or null)');
  if (!isPlainObject(c.params)) {
    problems.push(`params is ${describe(c.params)}, expected a record of { shape, dtype, data } (see stateDict)`);
  } else {
    for (const [name, entry] of Object.entries(c.params)) checkParamEntry(`params['${name}']`, entry, problems);
  }
  if (c.generators !== undefined) {
    if (!isPlainObject(c.generators)) problems.push(`generators is ${describe(c.generators)}, expected a record of Generator.getState() results`);
    else for (const [name, s] of Object.entries(c.generators)) checkGeneratorState(`generators['${name}']`, s, problems);
  }
  if (c.extra !== undefined && !isPlainObject(c.extra)) problems.push(`extra is ${describe(c.extra)}, expected a plain object`);
}

export function checkParamEntry(where: string, entry: unknown, problems: string[]): entry is ParamEntry {
  if (!isPlainObject(entry)) {
    problems.push(`${where} is ${describe(entry)}, expected { shape, dtype, data }`);
    return false;
  }
  const before = problems.length;
  const { shape, dtype, data } = entry;
  const shapeOk = Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= 0);
  if (!shapeOk) problems.push(`${where}.shape is ${describe(shape)}, expected an array of non-negative integers`);
  if (dtype !== 'float32' && dtype !== 'float64') problems.push(`${where}.dtype is ${describe(dtype)}, expected 'float32' or 'float64'`);
  const ctor = dtype === 'float64' ? Float64Array : Float32Array;
  if (!(data instanceof ctor)) {
    problems.push(`${where}.data is ${describe(data)}, expected a ${ctor.name}${dtype === 'float32' || dtype === 'float64' ? ` for dtype '${dtype}'` : ''}`);
  } else if (shapeOk) {
    const size = (shape as number[]).reduce((n, d) => n * d, 1);
    if (data.length !== size) problems.push(`${where}.data holds ${data.length} values, shape ${fmtShape(shape as number[])} needs ${size}`);
  }
  return problems.length === before;
}

function checkGeneratorState(where: string, s: unknown, problems: string[]): void {
  const ok =
    isPlainObject(s) &&
    Array.isArray(s.words) &&
    s.words.length === 4 &&
    s.words.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32) &&
    (s.spareNormal === null || typeof s.spareNormal === 'number');
  if (!ok) problems.push(`${where} is ${describe(s)}, expected Generator.getState(): { words: [4 uint32], spareNormal: number | null }`);
}

/**
 * The reasons `v` cannot be stored outside params (see checkPlainData), each naming its place under
 * `where` ("extra.tokenizer is a function; ..."); [] when it can. For callers that validate data long
 * before it is saved, such as a trainer's config.
 */
export function plainDataProblems(v: unknown, where: string): string[] {
  const problems: string[] = [];
  checkPlainData(v, where, problems, new Set());
  return problems;
}

/**
 * Everything outside params must be plain data that comes back as it went in: objects, arrays, strings,
 * numbers, booleans, null, undefined, bigints, typed arrays, Dates and Sets. A Map would come back as an
 * object and a class instance as a plain object, so they are refused here rather than changed silently.
 * Shared references are stored twice (they come back as separate copies); cycles are refused.
 */
function checkPlainData(v: unknown, where: string, problems: string[], ancestors: Set<object>): void {
  if (problems.length > MAX_LISTED) return;
  const t = typeof v;
  if (t === 'function' || t === 'symbol') {
    problems.push(`${where} is a ${t}; checkpoints hold plain data`);
    return;
  }
  if (t !== 'object' || v === null) return;
  const o = v as object;
  if (ArrayBuffer.isView(o)) {
    if (o instanceof DataView) problems.push(`${where} is a DataView; store a typed array instead`);
    return;
  }
  if (o instanceof Date) return;
  if (ancestors.has(o)) {
    problems.push(`${where} refers back to an object that contains it (a cycle); checkpoints hold trees of plain data`);
    return;
  }
  ancestors.add(o);
  if (Array.isArray(o) && Object.getPrototypeOf(o) === Array.prototype) {
    o.forEach((x, i) => checkPlainData(x, `${where}[${i}]`, problems, ancestors));
  } else if (o instanceof Set && Object.getPrototypeOf(o) === Set.prototype) {
    let i = 0;
    for (const x of o) checkPlainData(x, `${where}.<set item ${i++}>`, problems, ancestors);
  } else if (isPlainObject(o)) {
    for (const [k, x] of Object.entries(o)) checkPlainData(x, `${where}.${k}`, problems, ancestors);
  } else {
    const name = o.constructor?.name ?? 'object without a prototype';
    const hint =
      o instanceof Map ? ' (it would come back as a plain object; use Object.fromEntries)'
      : o instanceof Tensor ? ' (store tensor.data.slice(), or use stateDict for parameters)'
      : ' (it would come back as a plain object without its class)';
    problems.push(`${where} is a ${name}; checkpoints hold plain data${hint}`);
  }
  ancestors.delete(o);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length <= 8 ? `[${v.map(describe).join(', ')}]` : `an array of ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}${'length' in v ? ` of ${(v as { length: number }).length}` : ''}`;
  if (typeof v === 'string') return `'${v.length > 40 ? `${v.slice(0, 40)}...` : v}'`;
  if (typeof v === 'object') return isPlainObject(v) ? `an object with keys ${Object.keys(v).slice(0, 8).join(', ') || '(none)'}` : `a ${v.constructor?.name ?? 'object'}`;
  if (typeof v === 'bigint') return `${v}n`;
  return String(v);
}

export function listProblems(problems: string[]): string {
  const shown = problems.slice(0, MAX_LISTED);
  const more = problems.length > MAX_LISTED ? `\n  ... and ${problems.length - MAX_LISTED} more` : '';
  return problems.length === 1 ? problems[0] : `${problems.length} problems:\n  ${shown.join('\n  ')}${more}`;
}
