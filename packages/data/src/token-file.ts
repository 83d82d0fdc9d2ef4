import * as fs from 'node:fs';
import * as os from 'node:os';
import { DataError } from './errors.js';

/**
 * Token file layout (little-endian), a fixed 64-byte header then the ids:
 *
 *   offset  size  field
 *        0     8  magic "LOOMTOK1"
 *        8     4  version (uint32) = 1
 *       12     4  bytes per token (uint32): 2 = uint16 ids, 4 = uint32 ids
 *       16     8  token count (uint64)
 *       24     4  vocabulary size (uint32)
 *       28     4  reserved, 0
 *       32    32  vocabulary hash (sha256 of the vocabulary or BPE merges text)
 *       64     -  count ids, dtype as above
 *
 * uint16 is used when every id fits (vocabulary size <= 65536), halving the file.
 */
export const TOKEN_FILE_MAGIC = 'LOOMTOK1';
export const TOKEN_FILE_VERSION = 1;
export const TOKEN_FILE_HEADER_BYTES = 64;

export interface TokenFileHeader {
  version: number;
  bytesPerToken: 2 | 4;
  count: number;
  vocabSize: number;
  vocabHash: string;
}

/** Anything that identifies a vocabulary: a Vocabulary, a tokenizer, or `{ hash, size }`. */
export interface VocabularyIdentity {
  readonly hash: string;
}

/** A sequence of token ids readable by window; an in-memory array or a token file. */
export interface TokenSource {
  readonly length: number;
  /** Reads ids [offset, offset + count) into `out` (or a new array) and returns the filled part. */
  read(offset: number, count: number, out?: Int32Array): Int32Array;
}

/** An in-memory TokenSource over an Int32Array. */
export class ArrayTokenSource implements TokenSource {
  constructor(readonly ids: Int32Array) {}

  get length(): number {
    return this.ids.length;
  }

  read(offset: number, count: number, out?: Int32Array): Int32Array {
    checkRange('ArrayTokenSource.read', offset, count, this.ids.length, out);
    const dst = out ? out.subarray(0, count) : new Int32Array(count);
    dst.set(this.ids.subarray(offset, offset + count));
    return dst;
  }
}

function checkRange(fn: string, offset: number, count: number, length: number, out?: Int32Array): void {
  if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(count) && offset >= 0 && count >= 0 && offset + count <= length)) {
    throw new DataError(`${fn}: window [${offset}, ${offset}+${count}) out of range [0, ${length})`);
  }
  if (out && out.length < count) throw new DataError(`${fn}: out has ${out.length} elements, expected at least ${count}`);
}

export function bytesPerTokenFor(vocabSize: number): 2 | 4 {
  return vocabSize <= 65536 ? 2 : 4;
}

function assertLittleEndian(fn: string): void {
  if (os.endianness() !== 'LE') throw new DataError(`${fn}: token files are little-endian and this machine is big-endian`);
}

/**
 * Writes a token file in a streaming way: ids are appended in chunks, the header is completed on
 * `close()`. The file is written as `path + '.partial'` and renamed at close, so an interrupted
 * encode never leaves a file that looks complete.
 */
export class TokenFileWriter {
  readonly bytesPerToken: 2 | 4;
  count = 0;
  private fd: number;
  private readonly partial: string;
  private scratch: Uint8Array = new Uint8Array(0);

  constructor(readonly path: string, readonly vocabSize: number, readonly vocabHash: string) {
    assertLittleEndian('TokenFileWriter');
    if (!(Number.isInteger(vocabSize) && vocabSize > 0 && vocabSize <= 0xffffffff)) {
      throw new DataError(`TokenFileWriter: vocabSize must be a positive 32-bit integer, got ${vocabSize}`);
    }
    if (!/^[0-9a-f]{64}$/.test(vocabHash)) throw new DataError(`TokenFileWriter: vocabHash must be 64 hex digits (sha256), got '${vocabHash}'`);
    this.bytesPerToken = bytesPerTokenFor(vocabSize);
    this.partial = path + '.partial';
    this.fd = fs.openSync(this.partial, 'w');
    fs.writeSync(this.fd, this.header(0), 0, TOKEN_FILE_HEADER_BYTES, 0);
  }

  write(ids: Int32Array): void {
    const n = ids.length;
    const bytes = n * this.bytesPerToken;
    if (this.scratch.length < bytes) this.scratch = new Uint8Array(bytes);
    const vs = this.vocabSize;
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      if (!(id >= 0 && id < vs)) throw new DataError(`TokenFileWriter.write: id ${id} out of range [0, ${vs})`, { file: this.path });
    }
    if (this.bytesPerToken === 2) new Uint16Array(this.scratch.buffer, 0, n).set(ids);
    else new Uint32Array(this.scratch.buffer, 0, n).set(ids);
    let done = 0;
    while (done < bytes) done += fs.writeSync(this.fd, this.scratch, done, bytes - done, TOKEN_FILE_HEADER_BYTES + this.count * this.bytesPerToken + done);
    this.count += n;
  }

  /** Completes the header and moves the file into place; returns the token count. */
  close(): number {
    fs.writeSync(this.fd, this.header(this.count), 0, TOKEN_FILE_HEADER_BYTES, 0);
    fs.closeSync(this.fd);
    fs.renameSync(this.partial, this.path);
    return this.count;
  }

  /** Closes and deletes the partial file (after an error). */
  abort(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      /* already closed */
    }
    fs.rmSync(this.partial, { force: true });
  }

  private header(count: number): Uint8Array {
    return encodeHeader({ version: TOKEN_FILE_VERSION, bytesPerToken: this.bytesPerToken, count, vocabSize: this.vocabSize, vocabHash: this.vocabHash });
  }
}

export function encodeHeader(h: TokenFileHeader): Uint8Array {
  const bytes = new Uint8Array(TOKEN_FILE_HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < 8; i++) bytes[i] = TOKEN_FILE_MAGIC.charCodeAt(i);
  view.setUint32(8, h.version, true);
  view.setUint32(12, h.bytesPerToken, true);
  view.setBigUint64(16, BigInt(h.count), true);
  view.setUint32(24, h.vocabSize, true);
  bytes.set(Buffer.from(h.vocabHash, 'hex'), 32);
  return bytes;
}

/** Parses and checks a header; `fileBytes` is the file's size, checked against the count. */
export function decodeHeader(bytes: Uint8Array, fileBytes: number, file?: string): TokenFileHeader {
  const where = { file };
  if (bytes.length < TOKEN_FILE_HEADER_BYTES) throw new DataError(`not a token file: ${bytes.length} bytes, expected a ${TOKEN_FILE_HEADER_BYTES}-byte header`, where);
  let magic = '';
  for (let i = 0; i < 8; i++) magic += String.fromCharCode(bytes[i]);
  if (magic !== TOKEN_FILE_MAGIC) throw new DataError(`not a token file: magic ${JSON.stringify(magic)}, expected "${TOKEN_FILE_MAGIC}"`, where);
  const view = new DataView(bytes.buffer, bytes.byteOffset, TOKEN_FILE_HEADER_BYTES);
  const version = view.getUint32(8, true);
  if (version !== TOKEN_FILE_VERSION) throw new DataError(`token file version ${version}, expected ${TOKEN_FILE_VERSION}`, where);
  const bpt = view.getUint32(12, true);
  if (bpt !== 2 && bpt !== 4) throw new DataError(`token file header: bytes per token ${bpt}, expected 2 or 4`, where);
  const count = Number(view.getBigUint64(16, true));
  const vocabSize = view.getUint32(24, true);
  if (vocabSize === 0 || (bpt === 2 && vocabSize > 65536)) throw new DataError(`token file header: vocabulary size ${vocabSize} does not fit ${bpt}-byte ids`, where);
  const expected = TOKEN_FILE_HEADER_BYTES + count * bpt;
  if (fileBytes !== expected) {
    throw new DataError(`token file is ${fileBytes} bytes but its header says ${count} tokens (${expected} bytes): truncated or incomplete`, where);
  }
  const vocabHash = Buffer.from(bytes.subarray(32, 64)).toString('hex');
  return { version, bytesPerToken: bpt, count, vocabSize, vocabHash };
}

export interface OpenTokenFileOptions {
  /** The vocabulary (or tokenizer) the ids are meant for; a different hash is refused. */
  vocabulary?: VocabularyIdentity;
}

/**
 * A token file opened for reading by offset: it holds a file descriptor and reads each window with
 * `fs.readSync`, so a many-GB corpus is never loaded. Ids beyond the header's vocabulary size are
 * refused as they are read.
 */
export class TokenFile implements TokenSource {
  readonly header: TokenFileHeader;
  private fd: number | undefined;
  private scratch = new Uint8Array(0);

  private constructor(readonly path: string, fd: number, header: TokenFileHeader) {
    this.fd = fd;
    this.header = header;
  }

  static open(path: string, options: OpenTokenFileOptions = {}): TokenFile {
    assertLittleEndian('TokenFile.open');
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (e) {
      throw new DataError(`TokenFile.open: cannot open: ${(e as Error).message}`, { file: path });
    }
    try {
      const size = fs.fstatSync(fd).size;
      const head = new Uint8Array(TOKEN_FILE_HEADER_BYTES);
      const n = fs.readSync(fd, head, 0, TOKEN_FILE_HEADER_BYTES, 0);
      const header = decodeHeader(head.subarray(0, n), size, path);
      const want = options.vocabulary?.hash;
      if (want !== undefined && want !== header.vocabHash) {
        throw new DataError(`vocabulary mismatch: the token file was encoded with vocabulary hash ${header.vocabHash.slice(0, 16)}…, the vocabulary given has hash ${want.slice(0, 16)}…`, { file: path });
      }
      return new TokenFile(path, fd, header);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  get length(): number {
    return this.header.count;
  }

  get vocabSize(): number {
    return this.header.vocabSize;
  }

  get vocabHash(): string {
    return this.header.vocabHash;
  }

  /** Refuses (DataError) a vocabulary whose hash differs from the one the file was encoded with. */
  checkVocabulary(vocabulary: VocabularyIdentity): void {
    if (vocabulary.hash !== this.header.vocabHash) {
      throw new DataError(`vocabulary mismatch: the token file was encoded with vocabulary hash ${this.header.vocabHash.slice(0, 16)}…, the vocabulary given has hash ${vocabulary.hash.slice(0, 16)}…`, { file: this.path });
    }
  }

  read(offset: number, count: number, out?: Int32Array): Int32Array {
    if (this.fd === undefined) throw new DataError('TokenFile.read: the file is closed', { file: this.path });
    checkRange('TokenFile.read', offset, count, this.header.count, out);
    const bpt = this.header.bytesPerToken;
    const bytes = count * bpt;
    if (this.scratch.length < bytes) this.scratch = new Uint8Array(Math.max(bytes, 4096));
    let done = 0;
    const pos = TOKEN_FILE_HEADER_BYTES + offset * bpt;
    while (done < bytes) {
      const n = fs.readSync(this.fd, this.scratch, done, bytes - done, pos + done);
      if (n === 0) throw new DataError(`TokenFile.read: file ended at byte ${pos + done}: truncated`, { file: this.path });
      done += n;
    }
    const dst = out ? out.subarray(0, count) : new Int32Array(count);
    if (bpt === 2) dst.set(new Uint16Array(this.scratch.buffer, 0, count));
    else dst.set(new Uint32Array(this.scratch.buffer, 0, count));
    const vs = this.header.vocabSize;
    for (let i = 0; i < count; i++) {
      // uint32 ids above 2^31 read as negative Int32 values, so both bounds are checked.
      if (dst[i] < 0 || dst[i] >= vs) throw new DataError(`TokenFile.read: id ${dst[i] >>> 0} at token ${offset + i} out of range [0, ${vs})`, { file: this.path });
    }
    return dst;
  }

  /** Reads the whole file into memory (for small corpora and tests). */
  readAll(): Int32Array {
    return this.read(0, this.length);
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
