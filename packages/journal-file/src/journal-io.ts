import * as path from 'node:path';
import { IoPool } from '@cairn/snapshot';
import type { JournalOperation, JournalOperations } from './journal-operations';

/**
 * The built worker module. Threads run JavaScript, so from src/ (under jest) this is still the
 * package's dist/ build; IoPool.create fails with a clear message when it is missing.
 */
export const JOURNAL_IO_WORKER_FILE = path.join(__dirname, '..', 'dist', 'io-worker.js');

/**
 * The journal's use of the process's shared IoPool, typed for its operations. close() waits for the
 * journal's own operations and releases the pool (its threads stay for the next store, see `ioIdleMs`).
 */
export class JournalIo {
  private readonly pool: IoPool;

  constructor(threads: number, idleMs?: number) {
    this.pool = IoPool.shared({
      threads,
      workerFile: JOURNAL_IO_WORKER_FILE,
      ...(idleMs === undefined ? {} : { idleMs }),
    });
  }

  /** Runs one operation on a pool thread; `transfer` hands the args' buffers over instead of copying them. */
  run<K extends JournalOperation>(
    op: K,
    args: Parameters<JournalOperations[K]>[0],
    transfer = false,
  ): Promise<ReturnType<JournalOperations[K]>> {
    return this.pool.run<ReturnType<JournalOperations[K]>>({ op, args, transfer });
  }

  /** Waits for the journal's queued operations, then releases the pool. Idempotent. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
