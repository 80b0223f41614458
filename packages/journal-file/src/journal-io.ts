import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { Piscina } from 'piscina';
import type { JournalOperation, JournalOperations } from './io-worker';

/**
 * The built worker file. Workers run JavaScript, so under a TypeScript test runner (sources in src/)
 * this points at the package's dist/ build.
 */
export function workerFile(): string {
  const here = __dirname;
  const dir = path.basename(here) === 'src' ? path.join(here, '..', 'dist') : here;
  return path.join(dir, 'io-worker.js');
}

/** A dedicated piscina pool running journalOperations; close() drains it and ends its threads. */
export class JournalIo {
  private readonly pool: Piscina;
  private closed = false;

  constructor(threads: number) {
    const filename = workerFile();
    if (!existsSync(filename)) {
      throw new Error(
        `@cairn/journal-file: the IO worker ${filename} is missing; build the package first (npm run build)`,
      );
    }
    // minThreads 0: threads start on first use and a journal that is opened and closed at once stays cheap.
    this.pool = new Piscina({ filename, minThreads: 0, maxThreads: threads, idleTimeout: 30_000 });
  }

  run<K extends JournalOperation>(
    op: K,
    args: Parameters<JournalOperations[K]>[0],
    transferList?: ArrayBufferLike[],
  ): Promise<ReturnType<JournalOperations[K]>> {
    if (this.closed) return Promise.reject(new Error('journal IO pool is closed'));
    return this.pool.run(
      { op, args },
      transferList ? { transferList: transferList as unknown as ArrayBuffer[] } : undefined,
    );
  }

  /** Waits for queued operations, then ends the worker threads. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.close();
  }
}
