import type { StoredEvent } from './abstract-journal';
import { type CommitSignal, QueryAbortedError } from './commit-signal';
import type { DeletionEnvelope, EventEnvelope } from './spi';

/** What a query serves: events, and deletion markers where it asked for them. */
export type QueryItem<M> = EventEnvelope<M> | DeletionEnvelope;

/**
 * A place in a journal's global order: an integer >= 1. A number for backends whose order is one counter;
 * a bigint for a backend whose order is a pair packed into one integer (PostgreSQL's (transaction id,
 * row position)). Numbers and bigints compare with `<` and `>` as integers, so the reader needs nothing else.
 */
export type Position = number | bigint;

/** A stored event with what a query needs besides: its id and its position in the global order. */
export interface PositionedEvent extends StoredEvent {
  readonly persistenceId: string;
  /** Its place in the journal's global order: an integer >= 1, unique, never reused. */
  readonly position: Position;
}

/** Which events an ordered read returns. */
export type OrderedFilter =
  | { readonly kind: 'all' }
  | { readonly kind: 'tag'; readonly tag: string }
  | {
      readonly kind: 'persistenceId';
      readonly persistenceId: string;
      /** Inclusive bounds on sequenceNr. */
      readonly fromSequenceNr: number;
      readonly toSequenceNr: number;
    };

/** What a query iterator uses of its journal. */
export interface OrderedSource<M> {
  readonly commits: CommitSignal;
  /** Throws JournalClosedError once the journal is closing. */
  checkOpen(): void;
  /** The head position (0 when empty), read from storage. */
  head(): Promise<Position>;
  /** The backend's pages of events with after < position <= upTo matching the filter. */
  read(after: Position, upTo: Position): AsyncIterator<readonly PositionedEvent[]>;
  /** One pull through the journal (counted for close(), storage errors typed). */
  pull(it: AsyncIterator<readonly PositionedEvent[]>): Promise<IteratorResult<readonly PositionedEvent[]>>;
  envelope(event: PositionedEvent): QueryItem<M>;
  /** A corruption error passed through here before the query rethrows it (for metrics). */
  failed(error: unknown): void;
  /** Live queries of one id with an upper bound: true once the id's highest committed is >= that bound. */
  reachedEnd?(): Promise<boolean>;
}

export interface QueryParameters {
  /** Deliver positions above this (0: from the first). */
  readonly after: Position;
  readonly live: boolean;
  readonly signal: AbortSignal | undefined;
  /** Deletion markers are served (the journal filters them out of the pages otherwise). */
  readonly deletions?: boolean;
  /** Ends the query after delivering an event for which this is true (an id query's toSequenceNr). */
  readonly last?: (event: PositionedEvent) => boolean;
}

const DONE: IteratorResult<never> = { done: true, value: undefined };

/**
 * The iterator behind every query. Hand-written rather than an async generator (like readFrom's): a
 * catch-up query serves millions of events, and one already in memory costs a resolved promise here.
 *
 * It reads in rounds: a round takes the head position, reads the backend's pages up to it, then (live)
 * parks on the commit signal until a commit moves the head. The signal's counter is read before the head,
 * so a commit that lands between the two wakes the reader at once instead of being missed. It holds one
 * page at a time; `return()` (a `break`) closes the backend's iterator, forgets the parked promise and
 * the abort listener, and ends the live-query count that keeps a foreign-commit watcher running.
 *
 * `invalid` is an argument error found when the query was made: the first next() rejects with it.
 */
export function queryIterator<M>(
  source: OrderedSource<M>,
  parameters: QueryParameters | undefined,
  invalid: unknown,
): AsyncIterator<QueryItem<M>> {
  const { after = 0, live = false, signal, last } = parameters ?? ({} as Partial<QueryParameters>);
  let position: Position = after;
  let upTo: Position = -1;
  let pages: AsyncIterator<readonly PositionedEvent[]> | undefined;
  let page: readonly PositionedEvent[] = [];
  let index = 0;
  let finished = false;
  let started = false;
  let parked: { promise: Promise<void>; cancel: () => void } | undefined;

  const release = async (): Promise<void> => {
    if (finished) return;
    finished = true;
    page = [];
    parked?.cancel();
    parked = undefined;
    if (started && live) source.commits.liveQueryEnded();
    const open = pages;
    pages = undefined;
    await open?.return?.();
  };
  const fail = async (e: unknown): Promise<never> => {
    source.failed(e);
    await release();
    throw e;
  };
  const serve = (): IteratorResult<QueryItem<M>> => {
    const event = page[index++]!;
    position = event.position;
    if (last?.(event)) {
      page = [];
      void release();
    }
    return { done: false, value: source.envelope(event) };
  };
  const slow = async (): Promise<IteratorResult<QueryItem<M>>> => {
    try {
      if (invalid !== undefined) throw invalid;
      if (!started) {
        source.checkOpen();
        started = true;
        if (live) source.commits.liveQueryStarted();
      }
      for (;;) {
        if (finished) return DONE;
        if (signal?.aborted) throw new QueryAbortedError(signal.reason);
        source.checkOpen();
        if (pages) {
          const next = await source.pull(pages);
          if (finished) return DONE;
          if (!next.done) {
            page = next.value;
            index = 0;
            if (page.length > 0) return serve();
            continue;
          }
          // The round covered everything up to its head: the next one starts there.
          pages = undefined;
          position = upTo > position ? upTo : position;
          if (!live) {
            await release();
            return DONE;
          }
        }
        const seen = source.commits.current;
        const ended = live && source.reachedEnd ? await source.reachedEnd() : false;
        const head = await source.head();
        if (finished) return DONE;
        if (upTo < 0 && after > head) {
          throw new TypeError(
            `after: the offset is past this journal's last event (position ${after} > ${head}); was it taken from an older copy of this journal's data?`,
          );
        }
        if (head > position) {
          upTo = head;
          pages = source.read(position, head);
          continue;
        }
        upTo = head > upTo ? head : upTo;
        if (!live || ended) {
          await release();
          return DONE;
        }
        parked = source.commits.wait(seen, signal);
        await parked.promise;
        parked = undefined;
      }
    } catch (e) {
      return fail(e);
    }
  };
  return {
    next: () => {
      if (index < page.length && !finished) {
        if (signal?.aborted) return fail(new QueryAbortedError(signal.reason));
        try {
          source.checkOpen();
        } catch (e) {
          return fail(e);
        }
        return Promise.resolve(serve());
      }
      if (finished && invalid === undefined) return Promise.resolve(DONE);
      const result = slow();
      invalid = undefined;
      return result;
    },
    return: () => release().then(() => DONE),
  };
}
