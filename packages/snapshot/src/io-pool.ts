import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { JournalClosedError, StorageError } from '@cairn/actor-core';
import { Piscina } from 'piscina';
import {
  type IoOperation,
  type IoOperationMap,
  type IoOperationName,
  isIoFailure,
  ownsWholeBuffer,
} from './io-operations';

export interface IoPoolOptions {
  /**
   * Worker threads doing blocking file IO. Default `max(1, floor(os.availableParallelism() / 2))`: IO
   * threads mostly wait on the disk, and half the cores leaves the other half to the application. More
   * threads let more fsyncs overlap (useful on NVMe with many files); one keeps writes strictly queued.
   */
  readonly threads?: number;
  /**
   * How many operations a thread is handed ahead of time: it runs them one after another (each is
   * synchronous), so this is a queue depth, not parallelism. Default 16: the thread never idles waiting
   * for the main thread to send the next operation (small operations ran about 6x faster than with 1,
   * measured on 2 cores); the cost is that an operation may wait behind a slow fsync on its thread while
   * another thread is idle. 1 hands each thread one operation at a time.
   */
  readonly tasksPerThread?: number;
  /**
   * Absolute path of a built worker module (.js) exporting `ioWorkerModule({...ioOperations, ...yours})`.
   * Default: this package's dist/io-worker.js.
   */
  readonly workerFile?: string;
  /**
   * The most `close()` waits for operations still running (a hung fsync on a failing disk, say) before it
   * gives up: it then rejects with a StorageError naming each stuck operation and its path, and the threads
   * are terminated as soon as those operations return. Default 30000 ms.
   */
  readonly closeTimeoutMs?: number;
}

/** Options of IoPool.shared: those of a dedicated pool, and when its idle threads end. */
export interface SharedIoPoolOptions extends IoPoolOptions {
  /**
   * When the shared pool's threads end after its last use closes. Default: they are kept (unref'd, so
   * they never keep the process alive) until the process exits or `endIdleIoThreads()` is called, and a
   * store opened later finds them started (a thread takes 40-200 ms to start). A number: they end that
   * many ms after the last use closed (the value of the use that closes last applies); 0: they end with
   * that close(), which resolves once they have ended. Threads are never ended by a timer unless asked:
   * ending a thread while the process does other file IO has shown stray closes of reused file
   * descriptors (EBADF) on Node 20 (see the package README).
   */
  readonly idleMs?: number;
}

/** The default of IoPoolOptions.closeTimeoutMs. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;

/** Any operation of a worker module built with `ioWorkerModule`, beyond the standard ones. */
export interface CustomIoOperation {
  readonly op: string;
  readonly args: unknown;
  /** As for IoOperation: hand over the buffers found in `args` (top level, or arrays of them). */
  readonly transfer?: boolean;
}

/**
 * Resolved from the package root so it works whether this file runs from src/ (jest) or dist/: the
 * worker always runs the built JavaScript, which a thread can load without a TypeScript loader.
 */
export const DEFAULT_IO_WORKER_FILE = path.join(__dirname, '..', 'dist', 'io-worker.js');

/** The module every shared pool's threads load: it runs each task's operation from the task's module. */
export const SHARED_IO_WORKER_FILE = path.join(__dirname, '..', 'dist', 'shared-io-worker.js');

/** What a shared pool's thread is sent: the worker module, one of its operations, and its argument. */
export interface SharedIoTask {
  readonly module: string;
  readonly op: string;
  readonly args: unknown;
}

/** The default of IoPoolOptions.tasksPerThread. */
export const DEFAULT_TASKS_PER_THREAD = 16;

/** The default thread count: half the cores, at least one. */
export function defaultIoThreads(): number {
  return Math.max(1, Math.floor(os.availableParallelism() / 2));
}

/**
 * A pool of threads for blocking file IO (writes, fsync, rename, reads), so that slow disks neither block
 * the event loop nor starve libuv's shared threadpool (DNS, zlib, other fs calls). Operations start in
 * call order (FIFO) as threads free up. With one thread they also run strictly in order, so a pwrite
 * followed by an fdatasync may be issued without awaiting the first; with more threads, operations issued
 * without awaiting each other may run at the same time: await one before issuing an operation that
 * depends on it.
 *
 * Two kinds. `IoPool.create` starts a dedicated pool: whoever creates it closes it, and `close()` waits
 * for every queued operation, then stops the threads; afterwards no thread, handle or timer of the pool
 * remains. `IoPool.shared` (what the file journal and the file snapshot store use) is one use of the
 * process's shared pool for those thread settings: its `close()` waits for that use's own operations;
 * the threads stay for later uses (unref'd, so they never keep the process alive) until the process
 * exits, `endIdleIoThreads()` is called, or `idleMs` has passed. With `idleMs: 0`, or after
 * `endIdleIoThreads()`, nothing of the pool remains.
 */
export class IoPool {
  /** The number of worker threads. */
  readonly threads: number;
  private readonly pool: Piscina;
  /** Operations not yet settled, each with what it does, for naming the stuck ones when close() gives up. */
  private readonly pending = new Map<Promise<unknown>, string>();
  private closing: Promise<void> | undefined;

  private constructor(
    pool: Piscina,
    threads: number,
    private readonly closeTimeoutMs: number,
    /** For a use of a shared pool: that pool, the module its tasks name, and its idle time on release. */
    private readonly shared?: {
      readonly entry: SharedPool;
      readonly module: string;
      readonly idleMs: number | undefined;
    },
  ) {
    this.pool = pool;
    this.threads = threads;
  }

  /**
   * Starts a dedicated pool (threads start on demand).
   * @throws TypeError for a bad `threads`; Error when the worker module is missing (build first).
   */
  static create(options: IoPoolOptions = {}): IoPool {
    const { threads, tasksPerThread, closeTimeoutMs, workerFile } = checkPoolOptions(options);
    return new IoPool(startPiscina(workerFile, threads, tasksPerThread), threads, closeTimeoutMs);
  }

  /**
   * One use of the process's shared pool with these `threads` and `tasksPerThread` (started by the first
   * use, its threads on demand; kept after the last use closes, see `idleMs`), running the operations of
   * `workerFile`. Every file journal and file snapshot store of a process with the same thread settings
   * shares one. Release it with `close()`.
   * @throws TypeError for bad options; Error when a worker module is missing (build first).
   */
  static shared(options: SharedIoPoolOptions = {}): IoPool {
    const { threads, tasksPerThread, closeTimeoutMs, workerFile } = checkPoolOptions(options);
    const idleMs = options.idleMs;
    if (idleMs !== undefined && (typeof idleMs !== 'number' || !Number.isSafeInteger(idleMs) || idleMs < 0)) {
      throw new TypeError(`IoPool idleMs must be an integer >= 0, got ${String(idleMs)}`);
    }
    const entry = acquireShared(threads, tasksPerThread);
    return new IoPool(entry.pool, threads, closeTimeoutMs, { entry, module: workerFile, idleMs });
  }

  /** Runs one standard operation on a pool thread. Errors keep their `code` (ENOENT, ENOSPC, ...). */
  run<K extends IoOperationName>(operation: IoOperation<K>): Promise<IoOperationMap[K]['result']>;
  /** Runs an operation of a custom worker module (see `IoPoolOptions.workerFile`). */
  run<T>(operation: CustomIoOperation): Promise<T>;
  run(operation: CustomIoOperation): Promise<unknown> {
    if (this.closing) return Promise.reject(new JournalClosedError('IO pool'));
    const { args, transferList } = prepareTransfer(operation.args, operation.transfer === true);
    const running = this.shared
      ? this.pool.run({ module: this.shared.module, op: operation.op, args } satisfies SharedIoTask, {
          name: 'dispatch',
          transferList,
        })
      : this.pool.run(args, { name: operation.op, transferList });
    const task = running.then((result: unknown) => {
      if (isIoFailure(result)) {
        const error = new Error(result.message) as NodeJS.ErrnoException & { dest?: string };
        error.name = result.name;
        if (result.code !== undefined) error.code = result.code;
        if (result.errno !== undefined) error.errno = result.errno;
        if (result.syscall !== undefined) error.syscall = result.syscall;
        if (result.path !== undefined) error.path = result.path;
        if (result.dest !== undefined) error.dest = result.dest;
        throw error;
      }
      return result;
    });
    this.pending.set(task, describeOperation(operation));
    const forget = () => this.pending.delete(task);
    task.then(forget, forget);
    return task;
  }

  /**
   * Waits for the queued operations (of this use, for a shared pool), then stops the threads (a shared
   * pool: releases this use; see `idleMs`). Idempotent; later runs reject with JournalClosedError. When
   * operations are still running after `closeTimeoutMs`, rejects with a StorageError naming them (they are
   * stuck in the kernel: a thread cannot be stopped mid-syscall); the threads are terminated (released)
   * once those operations return.
   */
  close(): Promise<void> {
    this.closing ??= this.closeWithin(this.closeTimeoutMs);
    return this.closing;
  }

  private async closeWithin(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), timeoutMs);
    });
    const drained = (async () => {
      // Settled, not fulfilled: a failed write must not stop the others from finishing first.
      while (this.pending.size > 0) await Promise.allSettled([...this.pending.keys()]);
      return 'drained' as const;
    })();
    try {
      if ((await Promise.race([drained, expired])) === 'expired') {
        const stuck = [...this.pending.values()];
        void drained.then(() => this.stopThreads()).catch(() => undefined);
        throw new StorageError(
          `closing the IO pool gave up after ${timeoutMs} ms: ${stuck.length} operation(s) still running ` +
            `(${stuck.slice(0, 5).join('; ')}${stuck.length > 5 ? '; ...' : ''}); the disk is not answering. ` +
            'Its threads stop once they return',
        );
      }
    } finally {
      clearTimeout(timer);
    }
    await this.stopThreads();
  }

  private async stopThreads(): Promise<void> {
    if (this.shared) await releaseShared(this.shared.entry, this.shared.idleMs);
    else await destroyPiscina(this.pool);
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }
}

function checkPoolOptions(options: IoPoolOptions): {
  threads: number;
  tasksPerThread: number;
  closeTimeoutMs: number;
  workerFile: string;
} {
  const threads = options.threads ?? defaultIoThreads();
  if (typeof threads !== 'number' || !Number.isSafeInteger(threads) || threads < 1) {
    throw new TypeError(`IoPool threads must be an integer >= 1, got ${String(threads)}`);
  }
  const tasksPerThread = options.tasksPerThread ?? DEFAULT_TASKS_PER_THREAD;
  if (typeof tasksPerThread !== 'number' || !Number.isSafeInteger(tasksPerThread) || tasksPerThread < 1) {
    throw new TypeError(`IoPool tasksPerThread must be an integer >= 1, got ${String(tasksPerThread)}`);
  }
  const closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
  if (typeof closeTimeoutMs !== 'number' || !Number.isSafeInteger(closeTimeoutMs) || closeTimeoutMs < 0) {
    throw new TypeError(`IoPool closeTimeoutMs must be an integer >= 0, got ${String(closeTimeoutMs)}`);
  }
  const workerFile = options.workerFile ?? DEFAULT_IO_WORKER_FILE;
  if (typeof workerFile !== 'string' || !path.isAbsolute(workerFile)) {
    throw new TypeError(`IoPool workerFile must be an absolute path, got ${String(workerFile)}`);
  }
  checkWorkerFile(workerFile);
  return { threads, tasksPerThread, closeTimeoutMs, workerFile };
}

function checkWorkerFile(workerFile: string): void {
  if (!existsSync(workerFile)) {
    throw new Error(
      `IoPool worker module ${workerFile} does not exist: IO threads run the built JavaScript; run \`npm run build\``,
    );
  }
}

function startPiscina(workerFile: string, threads: number, tasksPerThread: number): Piscina {
  return new Piscina({
    filename: workerFile,
    // Threads start on demand: piscina keeps a minimum by starting replacements, also while closing.
    minThreads: 0,
    maxThreads: threads,
    // Tasks are synchronous on their thread, so these queue there rather than run concurrently.
    concurrentTasksPerWorker: tasksPerThread,
    // Piscina re-queues a task it could not hand out at the tail by default, reordering the queue.
    stricterFIFO: true,
    // The run/wait-time histograms cost time on every task and nothing here reads them.
    recordTiming: false,
    // Threads live until the pool is destroyed (an idle shared pool's end is timed by releaseShared);
    // piscina's own idle timeout would only re-spawn them under bursty load.
    idleTimeout: Number.POSITIVE_INFINITY,
    // Descriptors opened on an IO thread (a journal's segments) belong to the process: the main thread
    // and other threads read, write and close them. Node's default (trackUnmanagedFds: true) closes, when
    // a thread ends, every descriptor the thread opened with fs.open*, even one closed since and whose
    // number now names another file: a stray close of a reused descriptor (another store's write then
    // failed with EBADF, or could have reached the wrong file). Every descriptor here is closed
    // explicitly by its owner, and the leak tests check that none is left.
    trackUnmanagedFds: false,
  });
}

/**
 * Waits (a bounded time) until every thread has loaded its worker module, then ends the threads.
 * Terminating a thread while it is still reading that module leaks the file descriptor of the read (the
 * thread's `finally` never runs), so a pool closed right after it started must let its threads finish
 * starting first. Piscina has no event for this; a thread counts as ready once it is idle in `idleThreads`.
 */
async function destroyPiscina(pool: Piscina): Promise<void> {
  const deadline = Date.now() + THREAD_START_TIMEOUT_MS;
  while (pool.idleThreads < pool.threads.length && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await pool.destroy();
}

/** One shared pool of the process: its threads, how many uses hold it, and the timer ending it when idle. */
interface SharedPool {
  readonly key: string;
  readonly pool: Piscina;
  uses: number;
  idleTimer: NodeJS.Timeout | undefined;
}

/**
 * The process's shared pools by worker module and thread settings. Kept on the global object, so that
 * copies of this module loaded side by side (test runners that reload modules per test file) share them
 * too instead of each starting its own threads.
 */
const sharedPools: Map<string, SharedPool> = processWide('@cairn/snapshot shared IO pools', () => new Map());

function processWide<T>(name: string, create: () => T): T {
  const global = globalThis as Record<symbol, unknown>;
  const key = Symbol.for(name);
  if (global[key] === undefined) global[key] = create();
  return global[key] as T;
}

function acquireShared(threads: number, tasksPerThread: number): SharedPool {
  const key = `${SHARED_IO_WORKER_FILE} ${threads}/${tasksPerThread}`;
  let entry = sharedPools.get(key);
  if (!entry) {
    checkWorkerFile(SHARED_IO_WORKER_FILE);
    entry = {
      key,
      pool: startPiscina(SHARED_IO_WORKER_FILE, threads, tasksPerThread),
      uses: 0,
      idleTimer: undefined,
    };
    sharedPools.set(key, entry);
  }
  clearTimeout(entry.idleTimer);
  entry.idleTimer = undefined;
  entry.uses++;
  return entry;
}

/**
 * Ends one use; after the last one the pool ends now (idleMs 0), after idleMs (an unref'd timer), or
 * (undefined) when the process exits or endIdleIoThreads() is called.
 */
async function releaseShared(entry: SharedPool, idleMs: number | undefined): Promise<void> {
  entry.uses--;
  if (entry.uses > 0 || idleMs === undefined) return;
  if (idleMs === 0) {
    await endShared(entry);
    return;
  }
  clearTimeout(entry.idleTimer);
  entry.idleTimer = setTimeout(() => void endShared(entry).catch(() => undefined), idleMs);
  entry.idleTimer.unref();
}

/** Ends an unused shared pool's threads; the next use starts a new pool. */
async function endShared(entry: SharedPool): Promise<void> {
  clearTimeout(entry.idleTimer);
  entry.idleTimer = undefined;
  if (sharedPools.get(entry.key) === entry) sharedPools.delete(entry.key);
  await destroyPiscina(entry.pool);
}

/**
 * Ends at once the threads of every shared IO pool that no file journal or snapshot store uses any more
 * (kept for later stores, see `SharedIoPoolOptions.idleMs`), and resolves once they have ended.
 * Pools still in use are left alone: their threads end after their last user closes. For leak checks in
 * tests and for a process that wants nothing left running after it closed its stores.
 */
export async function endIdleIoThreads(): Promise<void> {
  const idle = [...sharedPools.values()].filter((entry) => entry.uses === 0);
  await Promise.all(idle.map(endShared));
}

/** An operation as close() names it when stuck: its name and the path it works on. */
function describeOperation(operation: CustomIoOperation): string {
  const args = operation.args as { path?: unknown; file?: unknown; dir?: unknown } | null;
  const where = typeof args === 'object' && args !== null ? (args.path ?? args.file ?? args.dir) : undefined;
  return typeof where === 'string' ? `${operation.op} ${where}` : operation.op;
}

/** The most close() waits for threads that are still starting (see threadsStarted). */
const THREAD_START_TIMEOUT_MS = 10_000;

type TransferList = ArrayBuffer[];

/**
 * Structured cloning a typed array copies its whole ArrayBuffer: for a slice of Node's 8 KB buffer pool
 * or of a large read buffer, far more than the view. So every buffer in the arguments is sent as an
 * exact copy that is then transferred (one copy of just the bytes), or, when the caller hands it over and
 * it owns its ArrayBuffer, transferred as is (no copy).
 */
function prepareTransfer(args: unknown, handOver: boolean): { args: unknown; transferList: TransferList } {
  const transferList: TransferList = [];
  if (typeof args !== 'object' || args === null || Array.isArray(args) || ArrayBuffer.isView(args)) {
    return { args, transferList };
  }
  const send = (view: Uint8Array): Uint8Array => {
    // new Uint8Array(view) copies just the viewed bytes (Buffer#slice would not copy at all).
    const out = handOver && ownsWholeBuffer(view) ? view : new Uint8Array(view);
    if (!transferList.includes(out.buffer as ArrayBuffer)) transferList.push(out.buffer as ArrayBuffer);
    return out;
  };
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(args)) {
    if (value instanceof Uint8Array) copy[key] = send(value);
    else if (Array.isArray(value) && value.length > 0 && value.every((v) => v instanceof Uint8Array)) {
      copy[key] = value.map(send);
    } else copy[key] = value;
  }
  return { args: copy, transferList };
}
