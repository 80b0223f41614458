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

/** The default of IoPoolOptions.tasksPerThread. */
export const DEFAULT_TASKS_PER_THREAD = 16;

/** The default thread count: half the cores, at least one. */
export function defaultIoThreads(): number {
  return Math.max(1, Math.floor(os.availableParallelism() / 2));
}

/**
 * A dedicated pool of threads for blocking file IO (writes, fsync, rename, reads), so that slow disks
 * neither block the event loop nor starve libuv's shared threadpool (DNS, zlib, other fs calls).
 * Operations start in call order (FIFO) as threads free up. With one thread they also run strictly in
 * order, so a pwrite followed by an fdatasync may be issued without awaiting the first; with more threads,
 * operations issued without awaiting each other may run at the same time: await one before issuing an
 * operation that depends on it.
 *
 * Whoever creates a pool closes it: `close()` waits for every queued operation, then stops the threads;
 * afterwards no thread, handle or timer of the pool remains.
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
  ) {
    this.pool = pool;
    this.threads = threads;
  }

  /**
   * Starts the threads.
   * @throws TypeError for a bad `threads`; Error when the worker module is missing (build first).
   */
  static create(options: IoPoolOptions = {}): IoPool {
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
    if (!existsSync(workerFile)) {
      throw new Error(
        `IoPool worker module ${workerFile} does not exist: IO threads run the built JavaScript; run \`npm run build\``,
      );
    }
    const pool = new Piscina({
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
      // Threads live until close(); an idle timeout would only re-spawn them under bursty load.
      idleTimeout: Number.POSITIVE_INFINITY,
    });
    return new IoPool(pool, threads, closeTimeoutMs);
  }

  /** Runs one standard operation on a pool thread. Errors keep their `code` (ENOENT, ENOSPC, ...). */
  run<K extends IoOperationName>(operation: IoOperation<K>): Promise<IoOperationMap[K]['result']>;
  /** Runs an operation of a custom worker module (see `IoPoolOptions.workerFile`). */
  run<T>(operation: CustomIoOperation): Promise<T>;
  run(operation: CustomIoOperation): Promise<unknown> {
    if (this.closing) return Promise.reject(new JournalClosedError('IO pool'));
    const { args, transferList } = prepareTransfer(operation.args, operation.transfer === true);
    const task = this.pool.run(args, { name: operation.op, transferList }).then((result: unknown) => {
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
   * Waits for the queued operations, then stops the threads. Idempotent; later runs reject with
   * JournalClosedError. When operations are still running after `closeTimeoutMs`, rejects with a
   * StorageError naming them (they are stuck in the kernel: a thread cannot be stopped mid-syscall); the
   * threads are terminated once those operations return.
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
    await this.threadsStarted();
    await this.pool.destroy();
  }

  /**
   * Waits (a bounded time) until every thread has loaded its worker module. Terminating a thread while
   * it is still reading that module leaks the file descriptor of the read (the thread's `finally` never
   * runs), so a pool closed right after create() must let its threads finish starting first. Piscina
   * has no event for this; a thread counts as ready once it is idle in `idleThreads`.
   */
  private async threadsStarted(): Promise<void> {
    const deadline = Date.now() + THREAD_START_TIMEOUT_MS;
    while (this.pool.idleThreads < this.pool.threads.length && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }
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
