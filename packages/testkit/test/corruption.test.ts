import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  deleteFile,
  flipBit,
  flipByte,
  injectRandomCorruption,
  leaveStaleLock,
  listDataFiles,
  seededRandom,
  truncateTail,
  zeroRange,
} from '@cairn/testkit';

let dir: string;
let file: string;
const original = Buffer.from('0123456789abcdef');
/** Every temp directory this file made: all of them must be gone afterwards. */
const made: string[] = [];
const freshDir = async () => {
  const d = await mkdtemp(path.join(tmpdir(), 'cairn-corrupt-'));
  made.push(d);
  return d;
};

beforeEach(async () => {
  dir = await freshDir();
  file = path.join(dir, 'data.log');
  await writeFile(file, original);
});
afterEach(() => rm(dir, { recursive: true, force: true }));
afterAll(() => {
  expect(made.filter((d) => existsSync(d))).toEqual([]);
});

it('flipBit flips exactly one bit and reports the bytes before and after', async () => {
  const report = await flipBit(file, { offset: 3, bit: 0 });
  const now = await readFile(file);
  expect(report).toMatchObject({ kind: 'flip-bit', file, offset: 3, before: '33', after: '32' });
  expect(now[3]).toBe(0x32);
  expect(Buffer.compare(now.subarray(4), original.subarray(4))).toBe(0);
});

it('flipByte complements one byte', async () => {
  const report = await flipByte(file, { offset: 0 });
  expect(report).toMatchObject({ kind: 'flip-byte', offset: 0, before: '30', after: 'cf' });
  expect((await readFile(file))[0]).toBe(0xcf);
});

it('zeroRange zeroes a range', async () => {
  const report = await zeroRange(file, { offset: 2, length: 4 });
  expect(report).toMatchObject({
    kind: 'zero-range',
    offset: 2,
    length: 4,
    before: '32333435',
    after: '00000000',
  });
  expect((await readFile(file)).subarray(2, 6)).toEqual(Buffer.alloc(4));
});

it('truncateTail cuts the end off', async () => {
  const report = await truncateTail(file, 5);
  expect(report).toMatchObject({ kind: 'truncate-tail', offset: 11, length: 5 });
  expect((await stat(file)).size).toBe(11);
});

it('refuses offsets outside the file and changes nothing', async () => {
  await expect(flipByte(file, { offset: 16 })).rejects.toThrow(RangeError);
  await expect(truncateTail(file, 17)).rejects.toThrow(RangeError);
  expect(await readFile(file)).toEqual(original);
});

it('deleteFile removes and reports the size', async () => {
  expect(await deleteFile(file)).toMatchObject({ kind: 'delete-file', length: 16 });
  expect(await listDataFiles(dir)).toEqual([]);
});

it('leaveStaleLock leaves a lock directory with an old mtime', async () => {
  const report = await leaveStaleLock(path.join(dir, 'journal'), 120_000);
  const info = await stat(report.file);
  expect(info.isDirectory()).toBe(true);
  expect(Date.now() - info.mtimeMs).toBeGreaterThan(100_000);
});

it('the same seed picks the same corruption', async () => {
  await writeFile(path.join(dir, 'second.log'), Buffer.alloc(64, 1));
  const a = await injectRandomCorruption(dir, seededRandom(7));
  await rm(dir, { recursive: true });
  dir = await freshDir();
  await writeFile(path.join(dir, 'data.log'), original);
  await writeFile(path.join(dir, 'second.log'), Buffer.alloc(64, 1));
  const b = await injectRandomCorruption(dir, seededRandom(7));
  expect({ ...b, file: path.basename(b!.file) }).toEqual({ ...a, file: path.basename(a!.file) });
});
