import type { MessageJournal } from './spi';

/**
 * Exclusive ownership of one persistenceId across processes, for actors that must never run in two
 * processes at once. A journal shared by several processes offers it when it declares the `leases`
 * capability (ask with canLease); journals that lock their whole directory (file, LMDB) need none.
 *
 * Fencing: a lease has an epoch that grows every time the lease changes hands, and every append the
 * holder makes to the id is checked against it in the same atomic step that stores it. A holder that lost
 * its lease (it stalled past its lifetime and another process took the id) fails its next append with
 * LeaseLostError instead of writing blind.
 */
export interface Lease {
  readonly persistenceId: string;
  /** Who holds it (as shown to a process that is refused). */
  readonly holder: string;
  /** Grows each time the lease changes hands; the holder's appends are checked against it. */
  readonly epoch: number;
  /**
   * Gives the lease up: others may take it at once, and this process's later appends to the id are no
   * longer fenced by it. Idempotent.
   */
  release(): Promise<void>;
}

export interface LeaseOptions {
  /** Who asks; shown to processes refused while it holds the lease. Default: host name, pid and a unique suffix. */
  readonly holder?: string;
  /** How long to wait for a lease another holder has, in ms. Default 0: refuse at once. */
  readonly waitMs?: number;
  /**
   * How long the lease lasts without renewal, in ms; the holder renews it every third of that while it
   * holds it. A process that dies holding it blocks others for at most this long. Default 15000.
   */
  readonly ttlMs?: number;
}

/** A journal that grants leases (capability `leases`). */
export interface LeaseProvider {
  /**
   * Takes the exclusive lease of `persistenceId`. Rejects with LeaseHeldError (naming the holder) when
   * another holder keeps it for longer than `waitMs`.
   */
  acquireLease(persistenceId: string, options?: LeaseOptions): Promise<Lease>;
}

/** True when the journal declares the `leases` capability (and so implements LeaseProvider). */
export function canLease<M>(journal: MessageJournal<M>): journal is MessageJournal<M> & LeaseProvider {
  const declared = (journal as { readonly capabilities?: { readonly leases?: boolean } }).capabilities;
  return declared?.leases === true;
}
