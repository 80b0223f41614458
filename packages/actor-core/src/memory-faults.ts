import { StorageError, WriteRejectedError } from './errors';

/**
 * Fault injection for the memory provider, so failure paths (of the runtime, of an application) are
 * tested without real I/O. Each `...Next...` arms one fault for the next matching call; delays apply to
 * every call until set back to 0.
 */
export class MemoryFaults {
  private writeFaults: Array<(persistenceIds: readonly string[]) => Error> = [];
  private readFaults: Error[] = [];
  private saveFaults: Error[] = [];
  private loadFaults: Error[] = [];
  private truncateFaults: Error[] = [];
  /** Milliseconds every write (journal commit) waits before it takes effect. */
  writeDelayMs = 0;
  /** Milliseconds every journal read page waits. */
  readDelayMs = 0;
  /** Milliseconds every snapshot load waits. */
  snapshotLoadDelayMs = 0;

  /** The next journal commit fails as if storage broke (StorageError); nothing of it is stored. */
  failNextWrite(error: Error = new StorageError('injected write failure')): this {
    this.writeFaults.push(() => error);
    return this;
  }

  /** The next journal commit is rejected before storage (WriteRejectedError); nothing of it is stored. */
  rejectNextWrite(reason = 'injected rejection'): this {
    this.writeFaults.push((ids) => new WriteRejectedError(ids[0] ?? '?', reason));
    return this;
  }

  /** The next journal read (page) fails. */
  failNextRead(error: Error = new StorageError('injected read failure')): this {
    this.readFaults.push(error);
    return this;
  }

  /** The next snapshot save fails; nothing is stored. */
  failNextSnapshotSave(error: Error = new StorageError('injected snapshot save failure')): this {
    this.saveFaults.push(error);
    return this;
  }

  /** The next snapshot load fails (pass a SnapshotCorruptedError to exercise fallback). */
  failNextSnapshotLoad(error: Error = new StorageError('injected snapshot load failure')): this {
    this.loadFaults.push(error);
    return this;
  }

  /** The next journal truncation (truncateBefore, or the one a deletion ends with) fails; nothing is cut. */
  failNextTruncate(error: Error = new StorageError('injected truncation failure')): this {
    this.truncateFaults.push(error);
    return this;
  }

  /** Disarms every fault and delay. */
  reset(): void {
    this.writeFaults = [];
    this.readFaults = [];
    this.saveFaults = [];
    this.loadFaults = [];
    this.truncateFaults = [];
    this.writeDelayMs = 0;
    this.readDelayMs = 0;
    this.snapshotLoadDelayMs = 0;
  }

  /** @internal */
  async beforeWrite(persistenceIds: readonly string[]): Promise<void> {
    await delay(this.writeDelayMs);
    const fault = this.writeFaults.shift();
    if (fault) throw fault(persistenceIds);
  }

  /** @internal */
  async beforeRead(): Promise<void> {
    await delay(this.readDelayMs);
    const fault = this.readFaults.shift();
    if (fault) throw fault;
  }

  /** @internal */
  async beforeSnapshotSave(): Promise<void> {
    const fault = this.saveFaults.shift();
    if (fault) throw fault;
  }

  /** @internal */
  beforeTruncate(): void {
    const fault = this.truncateFaults.shift();
    if (fault) throw fault;
  }

  /** @internal */
  async beforeSnapshotLoad(): Promise<void> {
    await delay(this.snapshotLoadDelayMs);
    const fault = this.loadFaults.shift();
    if (fault) throw fault;
  }
}

function delay(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}
