import { mkdir, open, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import * as path from 'node:path';

/** What an injector did, precisely enough to reproduce it. */
export interface CorruptionReport {
  readonly kind: 'flip-bit' | 'flip-byte' | 'truncate-tail' | 'zero-range' | 'delete-file' | 'stale-lock';
  readonly file: string;
  readonly offset?: number;
  /** Bytes at `offset` before and after, hex. */
  readonly before?: string;
  readonly after?: string;
  /** For truncate-tail and zero-range, how many bytes. */
  readonly length?: number;
}

/** A deterministic source of randomness: the same seed gives the same corruption. */
export type Random = () => number;

/** mulberry32: small, fast, good enough to pick offsets reproducibly from a seed. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function sizeOf(file: string): Promise<number> {
  return (await stat(file)).size;
}

async function pick(
  file: string,
  offset: number | undefined,
  random: Random | undefined,
  span = 1,
): Promise<number> {
  const size = await sizeOf(file);
  if (size < span) throw new RangeError(`${file} has ${size} bytes; nothing to corrupt`);
  if (offset !== undefined) {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + span > size) {
      throw new RangeError(`offset ${offset} is outside ${file} (${size} bytes)`);
    }
    return offset;
  }
  return Math.floor((random ?? Math.random)() * (size - span + 1));
}

async function rewrite(
  file: string,
  offset: number,
  change: (bytes: Buffer) => void,
  length = 1,
): Promise<CorruptionReport> {
  const handle = await open(file, 'r+');
  try {
    const bytes = Buffer.alloc(length);
    await handle.read(bytes, 0, length, offset);
    const before = bytes.toString('hex');
    change(bytes);
    await handle.write(bytes, 0, length, offset);
    await handle.sync();
    return { kind: 'flip-byte', file, offset, before, after: bytes.toString('hex'), length };
  } finally {
    await handle.close();
  }
}

/** Flips one bit at `offset` (random when omitted) of `file`. */
export async function flipBit(
  file: string,
  options: { offset?: number; bit?: number; random?: Random } = {},
): Promise<CorruptionReport> {
  const offset = await pick(file, options.offset, options.random);
  const bit = options.bit ?? Math.floor((options.random ?? Math.random)() * 8);
  const report = await rewrite(file, offset, (b) => {
    b[0] = b[0]! ^ (1 << bit);
  });
  return { ...report, kind: 'flip-bit' };
}

/** Replaces the byte at `offset` (random when omitted) with its complement. */
export async function flipByte(
  file: string,
  options: { offset?: number; random?: Random } = {},
): Promise<CorruptionReport> {
  const offset = await pick(file, options.offset, options.random);
  return rewrite(file, offset, (b) => {
    b[0] = b[0]! ^ 0xff;
  });
}

/** Writes zeros over `length` bytes from `offset` (random when omitted). */
export async function zeroRange(
  file: string,
  options: { offset?: number; length: number; random?: Random },
): Promise<CorruptionReport> {
  const offset = await pick(file, options.offset, options.random, options.length);
  const report = await rewrite(file, offset, (b) => b.fill(0), options.length);
  return { ...report, kind: 'zero-range' };
}

/** Cuts the last `bytes` bytes off `file`, as a crash mid-write can. */
export async function truncateTail(file: string, bytes: number): Promise<CorruptionReport> {
  const size = await sizeOf(file);
  if (!Number.isSafeInteger(bytes) || bytes < 1 || bytes > size) {
    throw new RangeError(`cannot cut ${bytes} bytes off ${file} (${size} bytes)`);
  }
  const handle = await open(file, 'r+');
  try {
    const tail = Buffer.alloc(Math.min(bytes, 16));
    await handle.read(tail, 0, tail.length, size - bytes);
    await handle.truncate(size - bytes);
    await handle.sync();
    return {
      kind: 'truncate-tail',
      file,
      offset: size - bytes,
      length: bytes,
      before: tail.toString('hex'),
      after: '',
    };
  } finally {
    await handle.close();
  }
}

/** Deletes a file (a lost segment, a lost snapshot). */
export async function deleteFile(file: string): Promise<CorruptionReport> {
  const size = await sizeOf(file);
  await rm(file);
  return { kind: 'delete-file', file, length: size };
}

/**
 * Leaves a proper-lockfile lock on `dir` as a SIGKILLed process would: the `<dir>.lock` directory with an
 * mtime `ageMs` in the past, so a journal opening `dir` must either refuse (lock fresh) or take it over
 * (lock stale).
 */
export async function leaveStaleLock(
  dir: string,
  ageMs = 60_000,
  lockfilePath = `${dir}.lock`,
): Promise<CorruptionReport> {
  await mkdir(lockfilePath, { recursive: true });
  await writeFile(path.join(lockfilePath, 'pid'), '999999\n').catch(() => undefined);
  const when = new Date(Date.now() - ageMs);
  await utimes(lockfilePath, when, when);
  return { kind: 'stale-lock', file: lockfilePath };
}

/** Every regular file under `dir`, recursively, with its size, sorted by path. */
export async function listDataFiles(dir: string): Promise<Array<{ file: string; size: number }>> {
  const out: Array<{ file: string; size: number }> = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) out.push({ file: full, size: (await stat(full)).size });
    }
  };
  await walk(dir);
  return out.sort((a, b) => a.file.localeCompare(b.file));
}

export type InjectorName = 'flip-bit' | 'flip-byte' | 'truncate-tail' | 'zero-range';

/**
 * Picks a non-empty data file under `dir` (weighted by size, skipping lock files and `match`-rejected
 * ones) and applies a random injector, all from `random`, so a seed reproduces it exactly.
 */
export async function injectRandomCorruption(
  dir: string,
  random: Random,
  options: { injectors?: readonly InjectorName[]; match?: (file: string) => boolean } = {},
): Promise<CorruptionReport | undefined> {
  const files = (await listDataFiles(dir)).filter(
    (f) => f.size > 0 && !f.file.includes('.lock') && (options.match?.(f.file) ?? true),
  );
  if (files.length === 0) return undefined;
  const total = files.reduce((n, f) => n + f.size, 0);
  // Weighted by size: a byte picked uniformly over all files decides which file it falls in.
  const at = random() * total;
  let end = 0;
  const target =
    files.find((f) => {
      end += f.size;
      return at < end;
    }) ?? files[files.length - 1]!;
  const injectors = options.injectors ?? ['flip-bit', 'flip-byte', 'truncate-tail', 'zero-range'];
  const kind = injectors[Math.floor(random() * injectors.length)]!;
  switch (kind) {
    case 'flip-bit':
      return flipBit(target.file, { random });
    case 'flip-byte':
      return flipByte(target.file, { random });
    case 'truncate-tail':
      return truncateTail(target.file, 1 + Math.floor(random() * Math.min(64, target.size)));
    case 'zero-range': {
      const length = Math.min(target.size, 1 + Math.floor(random() * 16));
      return zeroRange(target.file, { length, random });
    }
  }
}
