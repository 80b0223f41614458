import { isDeepStrictEqual } from 'node:util';
import type { JournalEntry } from '@cairn/actor-core';
import { mapConcurrently } from './bounded-concurrency';
import type { IdCopy } from './copy';
import { type CopySource, snapshotChain } from './copy-adapters';
import { type Problem, problemOf } from './verify';

/** What the target keeps of the source as it is, and so what verifying compares beyond messages. */
export interface KeptByTarget {
  /** Events' timestamps. */
  readonly timestamps: boolean;
  /** Events' tags. */
  readonly tags: boolean;
  /** Snapshots' timestamps. */
  readonly snapshotTimestamps: boolean;
}

/**
 * Reads source and target side by side and compares them: for every copied id the same highest
 * sequenceNr, the same events (sequenceNr and message, deep-equal after decoding; timestamps and tags too
 * when the target keeps them) and every source snapshot present with an equal state (and timestamp,
 * when the target keeps those).
 */
export async function verifyCopy(
  source: CopySource,
  copy: CopySource,
  copied: readonly IdCopy[],
  kept: KeptByTarget,
): Promise<{ problems: Problem[]; events: number; snapshots: number }> {
  const checked = await mapConcurrently(
    copied.filter((c) => c.notCopied === undefined),
    VERIFY_COPY_CONCURRENCY,
    ({ persistenceId, salvaged }) => compareId(source, copy, persistenceId, kept, salvaged?.keptThrough),
  );
  return {
    problems: checked.flatMap((c) => c.problems),
    events: checked.reduce((n, c) => n + c.events, 0),
    snapshots: checked.reduce((n, c) => n + c.snapshots, 0),
  };
}

/** Ids compared at once after a copy. */
const VERIFY_COPY_CONCURRENCY = 8;

type Mismatch = (sequenceNr: number | undefined, message: string) => void;

/** One id being compared: both ends, what the target keeps, where mismatches go, and how far to look. */
interface Comparison {
  readonly source: CopySource;
  readonly copy: CopySource;
  readonly id: string;
  readonly kept: KeptByTarget;
  readonly mismatch: Mismatch;
  readonly upTo: number;
}

/** verifyCopy for one id; for a salvaged one, up to the last event kept (`upTo`). */
async function compareId(
  source: CopySource,
  copy: CopySource,
  id: string,
  kept: KeptByTarget,
  upTo?: number,
): Promise<{ problems: Problem[]; events: number; snapshots: number }> {
  const problems: Problem[] = [];
  const mismatch: Mismatch = (sequenceNr, message) =>
    problems.push({
      kind: 'read-failed',
      persistenceId: id,
      ...(sequenceNr === undefined ? {} : { sequenceNr }),
      message: `copy differs: ${message}`,
    });
  let events = 0;
  let snapshots = 0;
  try {
    const [sh, th] = [upTo ?? (await source.highestSequenceNr(id)), await copy.highestSequenceNr(id)];
    if (sh !== th) {
      mismatch(
        undefined,
        `"${id}" highestSequenceNr ${sh} in the ${upTo === undefined ? 'source' : 'salvage'}, ${th} in the copy`,
      );
    }
    const comparison = { source, copy, id, kept, mismatch, upTo: upTo ?? Number.MAX_SAFE_INTEGER };
    events = await compareEvents(comparison);
    snapshots = await compareSnapshots(comparison);
  } catch (e) {
    problems.push(problemOf(e, id));
  }
  return { problems, events, snapshots };
}

/** Walks both journals' events of `id` together; returns how many matched. */
async function compareEvents({ source, copy, id, kept, mismatch, upTo }: Comparison): Promise<number> {
  let events = 0;
  const a = source.readFrom(id, 1, { toSequenceNr: upTo })[Symbol.asyncIterator]();
  const b = copy.readFrom(id, 1)[Symbol.asyncIterator]();
  try {
    while (true) {
      const [x, y] = [await a.next(), await b.next()];
      if (x.done && y.done) break;
      if (x.done || y.done) {
        const extra = (x.done ? y.value : x.value) as JournalEntry;
        mismatch(
          extra.sequenceNr,
          `"${id}" event ${extra.sequenceNr} is only in the ${x.done ? 'copy' : 'source'}`,
        );
        break;
      }
      const [s, c] = [x.value, y.value];
      if (s.sequenceNr !== c.sequenceNr) {
        mismatch(s.sequenceNr, `"${id}" source event ${s.sequenceNr} faces copy event ${c.sequenceNr}`);
        break;
      }
      if (!isDeepStrictEqual(s.message, c.message)) {
        mismatch(s.sequenceNr, `"${id}" event ${s.sequenceNr} has another message in the copy`);
      } else if (kept.timestamps && s.timestamp !== c.timestamp) {
        mismatch(
          s.sequenceNr,
          `"${id}" event ${s.sequenceNr} has timestamp ${c.timestamp} in the copy, ${s.timestamp} in the source`,
        );
      } else if (kept.tags && !isDeepStrictEqual([...(s.tags ?? [])], [...(c.tags ?? [])])) {
        mismatch(
          s.sequenceNr,
          `"${id}" event ${s.sequenceNr} has tags ${JSON.stringify(c.tags ?? [])} in the copy, ${JSON.stringify(s.tags ?? [])} in the source`,
        );
      }
      events++;
    }
  } finally {
    await a.return?.();
    await b.return?.();
  }
  return events;
}

/** Checks that every snapshot of the source that loads is in the copy, equal; returns how many were. */
async function compareSnapshots({ source, copy, id, kept, mismatch, upTo }: Comparison): Promise<number> {
  if (!source.loadLatest || !copy.loadLatest) return 0;
  let snapshots = 0;
  for (const seq of await snapshotChain(source, id)) {
    if (seq > upTo) continue;
    const [s, c] = [
      await source.loadLatest(id, { maxSequenceNr: seq }),
      await copy.loadLatest(id, { maxSequenceNr: seq }),
    ];
    if (c?.sequenceNr !== seq) mismatch(seq, `"${id}" snapshot ${seq} is missing in the copy`);
    else if (!isDeepStrictEqual(s?.state, c.state))
      mismatch(seq, `"${id}" snapshot ${seq} has another state in the copy`);
    else if (kept.snapshotTimestamps && s?.timestamp !== c.timestamp)
      mismatch(
        seq,
        `"${id}" snapshot ${seq} has timestamp ${c.timestamp} in the copy, ${s?.timestamp} in the source`,
      );
    else snapshots++;
  }
  return snapshots;
}

/**
 * After a copy in the global order: walks both global orders and checks that the copied ids' events come
 * in the same order in the copy as in the source (events of other ids, and source events committed after
 * the copy planned an id, are left out of the comparison). Resolves to how many events were compared, and
 * a problem at the first place the orders differ.
 */
export async function verifyOrder(
  source: CopySource,
  copy: CopySource,
  copied: readonly IdCopy[],
): Promise<{ problems: Problem[]; events: number }> {
  if (!source.globalOrder || !copy.globalOrder) return { problems: [], events: 0 };
  const highest = new Map(
    copied.filter((c) => c.notCopied === undefined).map((c) => [c.persistenceId, c.sourceHighest]),
  );
  const relevant = async function* (events: AsyncIterable<JournalEntry>) {
    for await (const e of events) {
      const upTo = highest.get(e.persistenceId);
      if (upTo !== undefined && e.sequenceNr <= upTo) yield e;
    }
  };
  const a = relevant(source.globalOrder())[Symbol.asyncIterator]();
  const b = relevant(copy.globalOrder())[Symbol.asyncIterator]();
  let events = 0;
  const differ = (message: string, at?: JournalEntry): { problems: Problem[]; events: number } => ({
    problems: [
      {
        kind: 'read-failed',
        ...(at ? { persistenceId: at.persistenceId, sequenceNr: at.sequenceNr } : {}),
        message: `copy differs: ${message}`,
      },
    ],
    events,
  });
  try {
    for (;;) {
      const [x, y] = [await a.next(), await b.next()];
      if (x.done && y.done) return { problems: [], events };
      if (x.done || y.done) {
        const extra = (x.done ? y.value : x.value) as JournalEntry;
        return differ(
          `in the global order, "${extra.persistenceId}" event ${extra.sequenceNr} is only in the ${x.done ? 'copy' : 'source'}`,
          extra,
        );
      }
      if (x.value.persistenceId !== y.value.persistenceId || x.value.sequenceNr !== y.value.sequenceNr) {
        return differ(
          `the global order differs after ${events} event(s): the source has "${x.value.persistenceId}" event ${x.value.sequenceNr} where the copy has "${y.value.persistenceId}" event ${y.value.sequenceNr}`,
          x.value,
        );
      }
      events++;
    }
  } catch (e) {
    return { problems: [problemOf(e, '')], events };
  } finally {
    await a.return?.();
    await b.return?.();
  }
}
