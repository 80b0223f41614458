import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isPersistenceError } from '@cairn/actor-core';
import { atomicWriteTempName, DEFAULT_IO_WORKER_FILE, IoPool } from '@cairn/snapshot';
import { captureResources, expectNoLeakedResources, findLeakedResources } from '@cairn/testkit';

const distDir = path.dirname(DEFAULT_IO_WORKER_FILE);

describe('IoPool', () => {
  let dir: string;
  let pool: IoPool;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-io-pool-'));
    pool = IoPool.create({ threads: 2 });
  });
  afterEach(async () => {
    await pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a descriptor opened on an IO thread belongs to the process: ending the thread never closes it, nor its number reused', async () => {
    const file = path.join(dir, 'segment');
    fs.writeFileSync(file, 'segment bytes');
    const other = path.join(dir, 'other');
    fs.writeFileSync(other, "another store's file");
    const own = IoPool.create({ threads: 1 });
    let kept: number | undefined;
    let reused: number | undefined;
    try {
      // Opened on the thread and still open when the thread ends.
      kept = (await own.run({ op: 'open', args: { path: file, flags: 'r' } })) as number;
      // Opened on the thread, closed by the main thread, its number then taken by another file.
      const closed = (await own.run({ op: 'open', args: { path: file, flags: 'r' } })) as number;
      fs.closeSync(closed);
      reused = fs.openSync(other, 'r');
      expect(reused).toBe(closed); // POSIX hands out the lowest free number
    } finally {
      await own.close();
    }
    expect(fs.readFileSync(kept, 'utf8')).toBe('segment bytes');
    expect(fs.readFileSync(reused, 'utf8')).toBe("another store's file");
    fs.closeSync(kept);
    fs.closeSync(reused);
  });

  it('writes a file atomically, replacing the old content, leaving no temp file', async () => {
    const file = path.join(dir, 'state.bin');
    fs.writeFileSync(file, 'old content');
    await pool.run({ op: 'writeFileAtomic', args: { path: file, data: Buffer.from('new'), fsync: true } });
    expect(fs.readFileSync(file, 'utf8')).toBe('new');
    await pool.run({
      op: 'writeFileAtomic',
      args: { path: file, data: [Buffer.from('a'), Buffer.from('bc')], fsync: false },
    });
    expect(fs.readFileSync(file, 'utf8')).toBe('abc');
    expect(fs.readdirSync(dir)).toEqual(['state.bin']);
  });

  it('creates the directory when asked and removes the files the new one supersedes', async () => {
    const file = path.join(dir, 'a', 'b', '0007-0002.v');
    await pool.run({
      op: 'writeFileAtomic',
      args: { path: file, data: Buffer.from('1'), createDirectory: true, syncDirectoryEntry: true },
    });
    fs.writeFileSync(path.join(dir, 'a', 'b', '0007-0001.v'), 'older');
    fs.writeFileSync(path.join(dir, 'a', 'b', '0008-0001.v'), 'other');
    await pool.run({
      op: 'writeFileAtomic',
      args: { path: file, data: Buffer.from('2'), supersedes: '^0007-\\d{4}\\.v$' },
    });
    expect(fs.readdirSync(path.join(dir, 'a', 'b')).sort()).toEqual(['0007-0002.v', '0008-0001.v']);
    expect(fs.readFileSync(file, 'utf8')).toBe('2');
    await expect(
      pool.run({
        op: 'writeFileAtomic',
        args: { path: path.join(dir, 'missing', 'f'), data: Buffer.from('') },
      }),
    ).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('writes the temp file into tempDir when given', async () => {
    const temps = path.join(dir, 'tmp');
    fs.mkdirSync(temps);
    const file = path.join(dir, 'x');
    await pool.run({ op: 'writeFileAtomic', args: { path: file, data: Buffer.from('x'), tempDir: temps } });
    expect(fs.readFileSync(file, 'utf8')).toBe('x');
    expect(fs.readdirSync(temps)).toEqual([]);
  });

  it('leaves the target untouched and removes its temp file when the atomic write fails', async () => {
    const target = path.join(dir, 'a-directory');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'inside'), '1');
    const failure = pool.run({ op: 'writeFileAtomic', args: { path: target, data: Buffer.from('x') } });
    await expect(failure).rejects.toMatchObject({ code: expect.stringMatching(/EISDIR|ENOTEMPTY|EEXIST/) });
    expect(fs.readdirSync(dir)).toEqual(['a-directory']);
    expect(fs.readdirSync(target)).toEqual(['inside']);
  });

  it('keeps the code, syscall and path of a failed operation', async () => {
    const missing = path.join(dir, 'missing');
    await expect(pool.run({ op: 'readFile', args: { path: missing } })).rejects.toMatchObject({
      code: 'ENOENT',
      syscall: 'open',
      path: missing,
      message: expect.stringContaining('ENOENT'),
    });
  });

  it('uses file descriptors opened on the main thread: pwrite, fsync, fdatasync, read, fstat, ftruncate', async () => {
    const file = path.join(dir, 'log');
    const fd = fs.openSync(file, 'w+');
    try {
      const written = await pool.run({
        op: 'pwrite',
        args: { fd, data: [Buffer.from('hello '), Buffer.from(''), Buffer.from('world')], position: 0 },
      });
      expect(written).toBe(11);
      await pool.run({ op: 'pwrite', args: { fd, data: Buffer.from('W'), position: 6 } });
      await pool.run({ op: 'fdatasync', args: { fd } });
      await pool.run({ op: 'fsync', args: { fd } });
      const bytes = await pool.run({ op: 'read', args: { fd, length: 100, position: 0 } });
      expect(Buffer.from(bytes).toString()).toBe('hello World');
      const tail = await pool.run({ op: 'read', args: { fd, length: 5, position: 6 } });
      expect(Buffer.from(tail).toString()).toBe('World');
      await pool.run({ op: 'ftruncate', args: { fd, length: 5 } });
      expect(await pool.run({ op: 'fstat', args: { fd } })).toEqual({ size: 5 });
    } finally {
      fs.closeSync(fd);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('hello');
  });

  it('opens and closes files, renames, unlinks, lists sorted, creates and removes directories', async () => {
    const nested = path.join(dir, 'a', 'b');
    expect(await pool.run({ op: 'mkdir', args: { path: nested } })).toEqual([path.join(dir, 'a'), nested]);
    expect(await pool.run({ op: 'mkdir', args: { path: nested } })).toEqual([]);
    await pool.run({ op: 'fsyncDir', args: { path: dir } });
    const fd = await pool.run({ op: 'open', args: { path: path.join(nested, 'f'), flags: 'w' } });
    await pool.run({ op: 'pwrite', args: { fd, data: Buffer.from('data'), position: 0 } });
    await pool.run({ op: 'close', args: { fd } });
    await pool.run({ op: 'rename', args: { from: path.join(nested, 'f'), to: path.join(nested, 'g') } });
    fs.writeFileSync(path.join(nested, 'e'), '');
    expect(await pool.run({ op: 'readdir', args: { path: nested } })).toEqual(['e', 'g']);
    const content = await pool.run({ op: 'readFile', args: { path: path.join(nested, 'g') } });
    expect(Buffer.from(content).toString()).toBe('data');
    await pool.run({ op: 'unlink', args: { path: path.join(nested, 'e') } });
    await pool.run({ op: 'unlink', args: { path: path.join(nested, 'g') } });
    await pool.run({ op: 'rmdir', args: { path: nested } });
    expect(fs.readdirSync(path.join(dir, 'a'))).toEqual([]);
    expect(await pool.run({ op: 'readdir', args: { path: nested, missingOk: true } })).toEqual([]);
    await expect(pool.run({ op: 'readdir', args: { path: nested } })).rejects.toMatchObject({
      code: 'ENOENT',
    });
  });

  it('removes temp files of dead processes and of this one, keeps those of live processes', async () => {
    const ours = atomicWriteTempName();
    const dead = '.999999999.0123456789abcdef.tmp'; // above any pid_max
    const live = `.${process.ppid}.0123456789abcdef.tmp`;
    for (const name of [ours, dead, live, 'data.snapshot', '.other.tmp'])
      fs.writeFileSync(path.join(dir, name), '');
    const removed = await pool.run({ op: 'removeStaleTempFiles', args: { path: dir } });
    expect(removed.sort()).toEqual([ours, dead].sort());
    expect(fs.readdirSync(dir).sort()).toEqual([live, '.other.tmp', 'data.snapshot'].sort());
  });

  it('copies buffers by default and hands them over (detached) with transfer: true', async () => {
    const file = path.join(dir, 'f');
    const fd = fs.openSync(file, 'w');
    try {
      const kept = new Uint8Array([1, 2, 3]);
      await pool.run({ op: 'pwrite', args: { fd, data: kept, position: 0 } });
      expect(kept.byteLength).toBe(3);
      // A small Buffer is a slice of Node's shared pool: it must be copied even when handed over.
      const pooled = Buffer.from('xy');
      await pool.run({ op: 'pwrite', args: { fd, data: pooled, position: 3 }, transfer: true });
      expect(pooled.toString()).toBe('xy');
      const given = new Uint8Array([9, 9]);
      await pool.run({ op: 'pwrite', args: { fd, data: given, position: 5 }, transfer: true });
      expect(given.byteLength).toBe(0);
    } finally {
      fs.closeSync(fd);
    }
    expect([...fs.readFileSync(file)]).toEqual([1, 2, 3, 0x78, 0x79, 9, 9]);
  });

  it('runs operations of a worker module composed with ioWorkerModule', async () => {
    const workerFile = path.join(dir, 'custom-worker.js');
    fs.writeFileSync(
      workerFile,
      `const { ioOperations, ioWorkerModule } = require(${JSON.stringify(path.join(distDir, 'io-operations.js'))});
       module.exports = ioWorkerModule({ ...ioOperations, double: ({ n }) => n * 2, fail: () => { throw Object.assign(new Error('no'), { code: 'EOWN' }); } });`,
    );
    const custom = IoPool.create({ threads: 1, workerFile });
    try {
      expect(await custom.run<number>({ op: 'double', args: { n: 21 } })).toBe(42);
      await expect(custom.run({ op: 'fail', args: {} })).rejects.toMatchObject({
        code: 'EOWN',
        message: 'no',
      });
      expect(await custom.run({ op: 'readdir', args: { path: dir } })).toEqual(['custom-worker.js']);
    } finally {
      await custom.close();
    }
  });

  it('runs queued operations in call order on one thread, also handed over ahead of time', async () => {
    const serial = IoPool.create({ threads: 1, tasksPerThread: 16 });
    const file = path.join(dir, 'ordered');
    const fd = fs.openSync(file, 'w');
    try {
      // Each write overwrites the same byte: only call order decides the final content.
      await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          serial.run({ op: 'pwrite', args: { fd, data: Buffer.from([i]), position: 0 } }),
        ),
      );
    } finally {
      fs.closeSync(fd);
      await serial.close();
    }
    expect([...fs.readFileSync(file)]).toEqual([99]);
  });

  it('drains queued operations on close, then rejects new ones with JournalClosedError; close is idempotent', async () => {
    const writes = Array.from({ length: 20 }, (_, i) =>
      pool.run({
        op: 'writeFileAtomic',
        args: { path: path.join(dir, `f${i}`), data: Buffer.from(String(i)) },
      }),
    );
    const closed = pool.close();
    expect(pool.close()).toBe(closed);
    await closed;
    await Promise.all(writes);
    expect(fs.readdirSync(dir)).toHaveLength(20);
    let error: unknown;
    try {
      await pool.run({ op: 'readdir', args: { path: dir } });
    } catch (e) {
      error = e;
    }
    expect(isPersistenceError(error, 'ERR_JOURNAL_CLOSED')).toBe(true);
  });

  it('refuses a bad thread count and a missing worker module with clear errors', () => {
    expect(() => IoPool.create({ threads: 0 })).toThrow(TypeError);
    expect(() => IoPool.create({ threads: 1.5 })).toThrow(TypeError);
    expect(() => IoPool.create({ tasksPerThread: 0 })).toThrow(/tasksPerThread must be an integer >= 1/);
    expect(() => IoPool.create({ workerFile: 'relative.js' })).toThrow(TypeError);
    expect(() => IoPool.create({ workerFile: path.join(dir, 'nope.js') })).toThrow(/run `npm run build`/);
  });
});

describe('IoPool resources', () => {
  it('leaves no thread, handle, timer or fd after close', async () => {
    const before = captureResources();
    for (let round = 0; round < 3; round++) {
      const pool = IoPool.create({ threads: 2 });
      expect(pool.threads).toBe(2);
      await pool.run({ op: 'readdir', args: { path: os.tmpdir() } });
      if (round === 0) {
        // The check can fail: while the pool is open, its threads are visible to it.
        expect(await findLeakedResources(before, 0)).not.toEqual([]);
      }
      await pool.close();
    }
    await expectNoLeakedResources(before);
  });

  it('leaves no fd of a thread still starting when closed right after create', async () => {
    // Terminating a thread while it reads its worker module would leak that read's fd.
    const before = captureResources();
    for (let round = 0; round < 5; round++) await IoPool.create({ threads: 2 }).close();
    await expectNoLeakedResources(before);
  });

  it('close() gives up after closeTimeoutMs on a hung operation, naming it, and stops the thread once it returns', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-io-pool-hang-'));
    const workerFile = path.join(dir, 'hanging-worker.js');
    // An operation blocking its thread the way a hung fsync does: nothing in JavaScript can interrupt it.
    fs.writeFileSync(
      workerFile,
      `const { ioOperations, ioWorkerModule } = require(${JSON.stringify(path.join(distDir, 'io-operations.js'))});
       module.exports = ioWorkerModule({ ...ioOperations, hang: ({ ms }) => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); return 'done'; } });`,
    );
    const before = captureResources();
    const hung = IoPool.create({ threads: 1, workerFile, closeTimeoutMs: 200 });
    const stuck = hung.run({ op: 'hang', args: { path: '/data/journal/0000000000000001.log', ms: 1500 } });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    const error = await hung.close().then(
      () => new Error('close resolved while an operation hung'),
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(1200);
    expect(isPersistenceError(error, 'ERR_STORAGE')).toBe(true);
    expect((error as Error).message).toContain('gave up after 200 ms');
    expect((error as Error).message).toContain('hang /data/journal/0000000000000001.log');
    // The operation itself still completes, and the thread is gone after it.
    await expect(stuck).resolves.toBe('done');
    await expectNoLeakedResources(before, 5000);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('rejects a bad closeTimeoutMs', () => {
    expect(() => IoPool.create({ closeTimeoutMs: -1 })).toThrow(TypeError);
  });
});
