import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { isPersistenceError } from '@cairn/actor-core';
import { DEFAULT_IO_WORKER_FILE, endIdleIoThreads, IoPool } from '@cairn/snapshot';
import { captureResources, expectNoLeakedResources, findLeakedResources } from '@cairn/testkit';

const distDir = path.dirname(DEFAULT_IO_WORKER_FILE);
let dir: string;
/** A worker module whose operation says which thread ran it. */
let whoWorker: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-shared-io-'));
  whoWorker = path.join(dir, 'who-worker.js');
  fs.writeFileSync(
    whoWorker,
    `const { ioOperations, ioWorkerModule } = require(${JSON.stringify(path.join(distDir, 'io-operations.js'))});
     module.exports = ioWorkerModule({ ...ioOperations, who: () => require('node:worker_threads').threadId });`,
  );
});

afterEach(async () => {
  await endIdleIoThreads();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('IoPool.shared', () => {
  it('serves uses with different worker modules from one pool: same thread, each module its operations', async () => {
    const standard = IoPool.shared({ threads: 1, idleMs: 0 });
    const custom = IoPool.shared({ threads: 1, workerFile: whoWorker, idleMs: 0 });
    const other = IoPool.shared({ threads: 1, workerFile: whoWorker, idleMs: 0 });
    try {
      const thread = await custom.run<number>({ op: 'who', args: {} });
      expect(await other.run<number>({ op: 'who', args: {} })).toBe(thread);
      expect(await standard.run({ op: 'readdir', args: { path: dir } })).toEqual(['who-worker.js']);
      // The standard module has no "who": a task names its module, not just the pool.
      await expect(standard.run({ op: 'who', args: {} } as never)).rejects.toThrow(/no operation "who"/);
    } finally {
      await Promise.all([standard.close(), custom.close(), other.close()]);
    }
  });

  it('close() of one use waits for its own operations, refuses its later ones, and leaves the pool to the others', async () => {
    const a = IoPool.shared({ threads: 1, workerFile: whoWorker, idleMs: 0 });
    const b = IoPool.shared({ threads: 1, workerFile: whoWorker, idleMs: 0 });
    try {
      const writes = Array.from({ length: 10 }, (_, i) =>
        a.run({ op: 'writeFileAtomic', args: { path: path.join(dir, `f${i}`), data: Buffer.from('x') } }),
      );
      await a.close();
      await Promise.all(writes);
      expect(fs.readdirSync(dir)).toHaveLength(11);
      const refused = await a.run({ op: 'readdir', args: { path: dir } }).catch((e: unknown) => e);
      expect(isPersistenceError(refused, 'ERR_JOURNAL_CLOSED')).toBe(true);
      expect(typeof (await b.run<number>({ op: 'who', args: {} }))).toBe('number');
    } finally {
      await b.close();
    }
  });

  it('keeps its threads idleMs after the last use closes: a use in that time gets the same thread, then they end', async () => {
    const before = captureResources();
    const first = IoPool.shared({ threads: 1, workerFile: whoWorker, idleMs: 400 });
    const thread = await first.run<number>({ op: 'who', args: {} });
    await first.close();
    // Still there (the check can fail), and reused by the next use.
    expect(await findLeakedResources(before, 0)).not.toEqual([]);
    const second = IoPool.shared({ threads: 1, workerFile: whoWorker, idleMs: 400 });
    expect(await second.run<number>({ op: 'who', args: {} })).toBe(thread);
    await second.close();
    // Nothing remains once the idle time has passed.
    await expectNoLeakedResources(before, 5000);
    const third = IoPool.shared({ threads: 1, workerFile: whoWorker, idleMs: 0 });
    expect(await third.run<number>({ op: 'who', args: {} })).not.toBe(thread);
    await third.close();
  });

  it('with idleMs 0 the last close() resolves after the threads ended', async () => {
    const before = captureResources();
    for (let round = 0; round < 3; round++) {
      const pool = IoPool.shared({ threads: 2, idleMs: 0 });
      await pool.run({ op: 'readdir', args: { path: dir } });
      await pool.close();
    }
    await expectNoLeakedResources(before, 0);
  });

  it('by default keeps idle threads until endIdleIoThreads(), which ends idle pools at once and leaves pools in use alone', async () => {
    const before = captureResources();
    const idle = IoPool.shared({ threads: 1, workerFile: whoWorker });
    const kept = await idle.run<number>({ op: 'who', args: {} });
    await idle.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const again = IoPool.shared({ threads: 1, workerFile: whoWorker });
    expect(await again.run<number>({ op: 'who', args: {} })).toBe(kept);
    await again.close();
    const busy = IoPool.shared({ threads: 2, workerFile: whoWorker });
    const thread = await busy.run<number>({ op: 'who', args: {} });
    await endIdleIoThreads();
    expect(await busy.run<number>({ op: 'who', args: {} })).toBe(thread);
    await busy.close();
    await endIdleIoThreads();
    await expectNoLeakedResources(before, 0);
  });

  it('idle threads do not keep the process alive: a script that closed its stores exits at once', async () => {
    const script = path.join(dir, 'script.js');
    fs.writeFileSync(
      script,
      `const { FileSnapshotStore } = require(${JSON.stringify(path.join(distDir, 'index.js'))});
       (async () => {
         const store = await FileSnapshotStore.open({ path: ${JSON.stringify(path.join(dir, 'snapshots'))},  });
         await store.save('a', 1, { n: 1 });
         await store.close();
         process.stdout.write(String(Date.now()));
       })();`,
    );
    const { stdout } = await promisify(execFile)(process.execPath, [script], { timeout: 30_000 });
    // Exited at once although its IO thread is kept (the timeout above would kill it and fail the test).
    expect(Date.now() - Number(stdout)).toBeLessThan(20_000);
  });

  it('rejects a bad idleMs', () => {
    expect(() => IoPool.shared({ idleMs: -1 })).toThrow(/idleMs must be an integer >= 0/);
    expect(() => IoPool.shared({ idleMs: 1.5 })).toThrow(TypeError);
  });
});
