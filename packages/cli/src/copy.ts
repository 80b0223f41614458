import { isDeepStrictEqual } from 'node:util';
import { isPersistenceError, JournalCorruptedError, type JournalEntry } from '@cairn/actor-core';
import { mapConcurrently } from './bounded-concurrency';
import { type CopySource, type CopyTarget, snapshotChain } from './copy-adapters';
import type { ProgressBar } from './progress-bar';
import { type Problem, problemOf, uniqueProblems } from './verify';

/** How one id fared. */
export interface IdCopy {
  readonly persistenceId: string;
  readonly sourceHighest: number;
  /** Events appended by this run (0 when the target already had them all). */
  readonly eventsCopied: number;
  /** Events the target already had from an earlier, interrupted run. */
  readonly eventsAlreadyThere: number;
  readonly snapshotsCopied: number;
  readonly snapshotsAlreadyThere: number;
  /** Set when the id's events were not (fully) copied: why. */
  readonly notCopied?: string;
  /** Set when `--salvage` cut the id back at a damaged record (see SalvageOutcome). */
  readonly salvaged?: SalvageOutcome;
}

/**
 * What a salvage did with one id whose source has a damaged record: the target holds its events up to
 * `keptThrough` (the last one before the first damaged record, and its highestSequenceNr there, so the
 * application's next append reuses the lost numbers consistently); the readable events after the damage
 * went into the quarantine dump; the damaged ones are listed.
 */
export interface SalvageOutcome {
  readonly keptThrough: number;
  /** The sequenceNrs that could not be read (the first damaged record, and any met after it). */
  readonly unreadable: readonly number[];
  /** Events after the damage written to the quarantine dump, and their first..last sequenceNrs. */
  readonly quarantined: number;
  readonly quarantinedRange?: { readonly first: number; readonly last: number };
  /**
   * Events after the damage neither copied nor quarantined: past a second damaged record, or all of them
   * when the source cannot read past the first (the file journal's records of one id follow each other;
   * `cairn repair` keeps their bytes in place of a salvage there).
   */
  readonly lost: number;
}

export interface CopyResult {
  readonly from: string;
  readonly to: string;
  readonly ids: IdCopy[];
  readonly eventsCopied: number;
  readonly snapshotsCopied: number;
  /**
   * True when the events were written in the source's global order (a source with queries into a target
   * with queries, no salvage, the walk not stopped by a read error), so the target's queries deliver
   * them in the source's order.
   */
  readonly inGlobalOrder: boolean;
  /** Problems met while copying (corrupt source data) and those found verifying the target afterwards. */
  readonly problems: Problem[];
  /** Events and snapshots compared after the copy. */
  readonly verified: { readonly events: number; readonly snapshots: number };
  readonly ok: boolean;
}

export interface CopyOptions {
  /** Events per appendBatch (one atomic write each). Default 500. */
  readonly chunkSize?: number;
  /**
   * Salvage a damaged source: an id whose events cannot all be read is copied up to its last good event
   * (with its snapshots up to there), its readable events after the damage go to `quarantine` (a dump),
   * and the id counts as salvaged instead of not copied.
   */
  readonly salvage?: { readonly quarantine: CopyTarget };
  /** Makes a progress bar for the number of ids to copy; ticked once per id. */
  readonly progress?: (ids: number) => ProgressBar;
}

async function firstEvent(source: CopySource, id: string): Promise<JournalEntry | undefined> {
  for await (const e of source.readFrom(id, 1, { max: 1 })) return e;
  return undefined;
}

/**
 * Why the target's events of an id are not the start of the source's (so resuming would splice two
 * histories), or undefined when they are: the target's last event must equal the source's at that number.
 */
async function divergence(
  source: CopySource,
  target: CopyTarget,
  id: string,
  already: number,
  first: JournalEntry,
): Promise<string | undefined> {
  if (already === 0 || already < first.sequenceNr) return undefined;
  const theirs = await target.eventAt(id, already);
  let ours: JournalEntry | undefined;
  for await (const e of source.readFrom(id, already, { max: 1 })) ours = e;
  if (
    theirs &&
    ours &&
    theirs.sequenceNr === ours.sequenceNr &&
    isDeepStrictEqual(theirs.message, ours.message)
  ) {
    return undefined;
  }
  return `the target's event ${already} differs from the source's: it holds another history of this id, nothing appended`;
}

/** Every id of the source, journal and snapshot-only ones, sorted. */
export async function sourceIds(source: CopySource): Promise<string[]> {
  const ids = new Set<string>();
  for await (const id of source.persistenceIds()) ids.add(id);
  for await (const id of source.snapshotIds()) ids.add(id);
  return [...ids].sort();
}

/**
 * What copying one id comes to before any event moves: copy events from `from` (the source's first
 * surviving sequenceNr), or not at all (why); `from` is undefined when the source has no readable event.
 */
type IdPlan =
  | { readonly copy: 'events'; readonly from: number }
  | { readonly copy: 'nothing'; readonly from: number | undefined; readonly notCopied?: string };

/**
 * Decides what to do with one id: nothing when the target is ahead, when its events are not the start of
 * the source's (another history), or when a journal written through the public API cannot keep the
 * numbering (events truncated at the start, or all of them); the highest alone when every event was
 * truncated and the target keeps numbering; otherwise copy the events. An id whose first event cannot
 * be read is not copied, or with `salvage` copied from 1, so that the read stops at the damaged record
 * at once and the readable events after it go to the quarantine.
 */
async function planId(
  source: CopySource,
  target: CopyTarget,
  id: string,
  sourceHighest: number,
  already: number,
  problems: Problem[],
  salvage: boolean,
): Promise<IdPlan> {
  let first: JournalEntry | undefined;
  try {
    first = await firstEvent(source, id);
  } catch (e) {
    // A salvage meets (and reports) the damage again when it reads from 1.
    if (salvage) return { copy: 'events', from: 1 };
    problems.push(problemOf(e, id));
    return {
      copy: 'nothing',
      from: undefined,
      notCopied: `its first event cannot be read: ${(e as Error).message}`,
    };
  }
  const from = first?.sequenceNr;
  if (already > sourceHighest) {
    return {
      copy: 'nothing',
      from,
      notCopied: `the target is ahead (highestSequenceNr ${already} there, ${sourceHighest} in the source)`,
    };
  }
  if (first === undefined) {
    if (sourceHighest === 0 || target.keepsNumbering) return { copy: 'nothing', from };
    return {
      copy: 'nothing',
      from,
      notCopied: `every event was truncated (highestSequenceNr ${sourceHighest}); the journal API cannot record a highestSequenceNr without events`,
    };
  }
  if (first.sequenceNr > 1 && !target.keepsNumbering) {
    return {
      copy: 'nothing',
      from,
      notCopied:
        `its first surviving event is ${first.sequenceNr} (events below were truncated); appended through the journal API ` +
        `they would be numbered from 1, so it is not copied (a dump keeps the numbering)`,
    };
  }
  let diverged: string | undefined;
  try {
    diverged = await divergence(source, target, id, already, first);
  } catch (e) {
    problems.push(problemOf(e, id));
    diverged = `the target's event ${already} cannot be compared with the source's: ${(e as Error).message}`;
  }
  return diverged === undefined
    ? { copy: 'events', from: first.sequenceNr }
    : { copy: 'nothing', from, notCopied: diverged };
}

/**
 * Appends the source's events of `id` from `from` to `target`, in chunks of `chunkSize`, each continuing
 * `progress.already`; a read error (a corrupt source record) ends the reading and is returned once the
 * good events before it are written. Resolves to how many were appended. A write error rejects.
 */
async function copyEvents(
  source: CopySource,
  target: CopyTarget,
  id: string,
  from: number,
  sourceHighest: number,
  chunkSize: number,
  progress: { already: number },
): Promise<{ copied: number; readError?: unknown }> {
  let copied = 0;
  let chunk: JournalEntry[] = [];
  const flush = async () => {
    if (chunk.length === 0) return;
    await target.appendEntries(id, chunk, progress.already);
    progress.already = chunk[chunk.length - 1]!.sequenceNr;
    copied += chunk.length;
    chunk = [];
  };
  let readError: unknown;
  const events = source.readFrom(id, from, { toSequenceNr: sourceHighest })[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<JournalEntry>;
      try {
        next = await events.next();
      } catch (e) {
        readError = e;
        break;
      }
      if (next.done) break;
      chunk.push(next.value);
      if (chunk.length >= chunkSize) await flush();
    }
  } finally {
    await events.return?.();
  }
  await flush();
  return readError === undefined ? { copied } : { copied, readError };
}

/** The sequenceNr a read error names (a JournalCorruptedError's), or undefined. */
function damagedSequenceNr(e: unknown): number | undefined {
  return e instanceof JournalCorruptedError || isPersistenceError(e, 'ERR_JOURNAL_CORRUPTED')
    ? (e as JournalCorruptedError).sequenceNr
    : undefined;
}

/**
 * Salvage of one id after its events were copied up to `keptThrough` and the record at `damaged` failed:
 * the readable events after it go to the quarantine, up to the next damaged record (whose number is
 * listed too; what follows that one is counted as lost).
 */
async function quarantineTail(
  source: CopySource,
  quarantine: CopyTarget,
  id: string,
  keptThrough: number,
  damaged: number,
  sourceHighest: number,
  chunkSize: number,
  problems: Problem[],
): Promise<SalvageOutcome> {
  const unreadable = [damaged];
  const progress = { already: await quarantine.highestSequenceNr(id) };
  const startedAt = progress.already;
  let quarantined = 0;
  if (damaged < sourceHighest) {
    const from = Math.max(damaged + 1, startedAt + 1);
    const { copied, readError } = await copyEvents(
      source,
      quarantine,
      id,
      from,
      sourceHighest,
      chunkSize,
      progress,
    );
    quarantined = copied;
    if (readError !== undefined) {
      // A backend that cannot read past the damaged record names it again: nothing more to list.
      const next = damagedSequenceNr(readError);
      if (next === undefined || next > damaged) problems.push(problemOf(readError, id));
      if (next !== undefined && next > damaged) unreadable.push(next);
    }
  }
  await quarantine.idDone(id);
  return {
    keptThrough,
    unreadable,
    quarantined,
    ...(quarantined > 0
      ? { quarantinedRange: { first: progress.already - quarantined + 1, last: progress.already } }
      : {}),
    // Past a second damaged record nothing more is read (a dump holds one run of consecutive events per
    // id); a backend that cannot read past the first one loses everything after it.
    lost: unreadable.length > 1 ? sourceHighest - unreadable[1]! : sourceHighest - damaged - quarantined,
  };
}

/** Copies the id's snapshots that load, oldest first (so the newest lands last), skipping those there. */
async function copySnapshots(
  source: CopySource & Required<Pick<CopySource, 'loadLatest'>>,
  target: CopyTarget,
  id: string,
  upTo = Number.MAX_SAFE_INTEGER,
): Promise<{ copied: number; alreadyThere: number }> {
  let copied = 0;
  let alreadyThere = 0;
  for (const seq of (await snapshotChain(source, id)).reverse()) {
    if (seq > upTo) continue;
    const entry = await source.loadLatest(id, { maxSequenceNr: seq });
    if (!entry) continue;
    if (await target.hasSnapshot(id, seq, entry.state, entry.timestamp)) {
      alreadyThere++;
      continue;
    }
    await target.saveSnapshot(entry);
    copied++;
  }
  return { copied, alreadyThere };
}

/** One id being copied: its plan, how far its events got, and what went wrong. */
interface IdWork {
  readonly id: string;
  readonly sourceHighest: number;
  /** The target's highest before this run. */
  readonly startedAt: number;
  readonly plan: IdPlan;
  /** The target's highest as the copy goes on (what the next chunk continues). */
  readonly progress: { already: number };
  readonly problems: Problem[];
  eventsCopied: number;
  notCopied: string | undefined;
  salvaged: SalvageOutcome | undefined;
}

/** Plans one id (see planId); a salvage also takes an id whose very first event is damaged. */
async function planWork(
  source: CopySource,
  target: CopyTarget,
  id: string,
  salvage: CopyOptions['salvage'],
): Promise<IdWork> {
  const problems: Problem[] = [];
  const sourceHighest = await source.highestSequenceNr(id);
  const startedAt = await target.highestSequenceNr(id);
  const plan = await planId(source, target, id, sourceHighest, startedAt, problems, !!salvage);
  return {
    id,
    sourceHighest,
    startedAt,
    plan,
    progress: { already: startedAt },
    problems,
    eventsCopied: 0,
    notCopied: plan.copy === 'nothing' ? plan.notCopied : undefined,
    salvaged: undefined,
  };
}

/**
 * Copies the id's events the target does not hold yet (after `progress.already`), one id's read; a read
 * error stops it (and, with a salvage, sends the readable rest to the quarantine).
 */
async function copyIdEvents(
  source: CopySource,
  target: CopyTarget,
  work: IdWork,
  options: { readonly chunkSize: number; readonly salvage?: CopyOptions['salvage'] },
): Promise<void> {
  const { id, plan, progress, problems, sourceHighest } = work;
  try {
    let readError: unknown;
    if (plan.copy === 'events' && progress.already < sourceHighest) {
      const from = Math.max(plan.from, progress.already + 1);
      let copied: number;
      ({ copied, readError } = await copyEvents(
        source,
        target,
        id,
        from,
        sourceHighest,
        options.chunkSize,
        progress,
      ));
      work.eventsCopied += copied;
    }
    if (readError !== undefined) {
      problems.push(problemOf(readError, id));
      const damaged = damagedSequenceNr(readError);
      if (options.salvage && damaged !== undefined) {
        work.salvaged = await quarantineTail(
          source,
          options.salvage.quarantine,
          id,
          progress.already,
          damaged,
          sourceHighest,
          options.chunkSize,
          problems,
        );
      } else {
        work.notCopied = `copying stopped after sequenceNr ${progress.already}: ${(readError as Error).message}`;
      }
    } else if (work.notCopied === undefined && target.keepsNumbering && sourceHighest > 0) {
      // A deleted id stays deleted: its marker is copied (where both ends know markers), so the target's
      // queries and `cairn verify` see a deletion, not an id whose events went missing.
      if (target.markDeleted && (await source.deletedAt?.(id, sourceHighest))) {
        await target.markDeleted(id, sourceHighest);
      } else {
        await target.markHighest(id, sourceHighest);
      }
    }
  } catch (e) {
    problems.push(problemOf(e, id));
    work.notCopied = `copying stopped after sequenceNr ${progress.already}: ${(e as Error).message}`;
  }
}

/** After its events: the id's snapshots, and its outcome. */
async function finishId(source: CopySource, target: CopyTarget, work: IdWork): Promise<IdCopy> {
  const { id, problems, plan, startedAt } = work;
  let snapshots = { copied: 0, alreadyThere: 0 };
  // Snapshots only where the events are complete: a snapshot ahead of its journal would make the
  // target recover to a state its events do not reach (after a salvage: up to what was kept).
  const { loadLatest } = source;
  if (work.notCopied === undefined && target.hasSnapshots && loadLatest) {
    try {
      snapshots = await copySnapshots({ ...source, loadLatest }, target, id, work.salvaged?.keptThrough);
    } catch (e) {
      problems.push(problemOf(e, id));
      work.notCopied = `snapshots not copied: ${(e as Error).message}`;
    }
  }
  await target.idDone(id);
  return {
    persistenceId: id,
    sourceHighest: work.sourceHighest,
    eventsCopied: work.eventsCopied,
    eventsAlreadyThere: Math.max(0, startedAt - Math.max(0, (plan.from ?? 1) - 1)),
    snapshotsCopied: snapshots.copied,
    snapshotsAlreadyThere: snapshots.alreadyThere,
    ...(work.notCopied === undefined ? {} : { notCopied: work.notCopied }),
    ...(work.salvaged === undefined ? {} : { salvaged: work.salvaged }),
  };
}

/** Copies one id (see copyData); its outcome and the problems met. */
async function copyId(
  source: CopySource,
  target: CopyTarget,
  id: string,
  options: { readonly chunkSize: number; readonly salvage?: CopyOptions['salvage'] },
): Promise<{ result: IdCopy; problems: Problem[] }> {
  const work = await planWork(source, target, id, options.salvage);
  await copyIdEvents(source, target, work, options);
  const result = await finishId(source, target, work);
  return { result, problems: work.problems };
}

/**
 * Copies the events of the planned ids in the source's global order: chunks of up to `chunkSize` events
 * as they come in that order (several ids mixed), each written in that order in one commit
 * (`appendInOrder`) before the next starts, so the target's global order is the source's. Events of ids
 * not planned for copying, already in the target, or committed after the ids were planned are passed
 * over; an id whose events do not continue what the target holds, or whose write failed, leaves the walk
 * (its own copy afterwards continues from what the target holds, and stops there with the reason).
 * Resolves to the read error that ended the walk, if one did.
 */
async function copyInGlobalOrder(
  events: AsyncIterable<JournalEntry>,
  target: CopyTarget & Required<Pick<CopyTarget, 'appendInOrder'>>,
  works: ReadonlyMap<string, IdWork>,
  chunkSize: number,
): Promise<unknown> {
  // The next sequenceNr each id's walk takes; an id out of the walk is not in it.
  const next = new Map<IdWork, number>();
  for (const work of works.values()) {
    if (work.plan.copy === 'events' && work.notCopied === undefined && work.startedAt < work.sourceHighest) {
      next.set(work, Math.max(work.plan.from, work.startedAt + 1));
    }
  }
  let chunk: { work: IdWork; entry: JournalEntry }[] = [];
  const flush = async () => {
    const writing = chunk;
    chunk = [];
    if (writing.length === 0) return;
    try {
      await target.appendInOrder(writing.map((c) => c.entry));
      for (const { work, entry } of writing) {
        work.progress.already = entry.sequenceNr;
        work.eventsCopied++;
      }
    } catch {
      // Out of the walk: each id's own copy continues from what the target really holds.
      for (const work of new Set(writing.map((c) => c.work))) {
        next.delete(work);
        const held = await target.highestSequenceNr(work.id).catch(() => work.progress.already);
        if (held > work.progress.already && held <= work.sourceHighest) {
          work.eventsCopied += held - work.progress.already;
          work.progress.already = held;
        }
      }
    }
  };
  const iterator = events[Symbol.asyncIterator]();
  let readError: unknown;
  try {
    for (;;) {
      let item: IteratorResult<JournalEntry>;
      try {
        item = await iterator.next();
      } catch (e) {
        readError = e;
        break;
      }
      if (item.done) break;
      const entry = item.value;
      const work = works.get(entry.persistenceId);
      const expected = work === undefined ? undefined : next.get(work);
      if (work === undefined || expected === undefined || entry.sequenceNr < expected) continue;
      if (entry.sequenceNr !== expected || entry.sequenceNr > work.sourceHighest) {
        // A gap (or an event past what was planned): the id's own copy reads it again and says why.
        next.delete(work);
        continue;
      }
      chunk.push({ work, entry });
      next.set(work, expected + 1);
      if (chunk.length >= chunkSize) await flush();
    }
    await flush();
  } finally {
    await iterator.return?.();
  }
  return readError;
}

/**
 * Copies every id's events (appendBatch in chunks with expectedSequenceNr, so the numbering matches and
 * a concurrent writer is refused) and its snapshots that verify (oldest first, so the newest lands last).
 *
 * Resumable: each id continues from the target's highestSequenceNr, and snapshots the target already has
 * are skipped, so running it again after an interruption finishes the job and never writes twice.
 * Truncated ids keep their numbering in a dump and in Cairn's journals (importEntries, importTruncated);
 * a journal written through the public API alone cannot keep it for an id whose first surviving event is
 * above 1, nor for one whose events were all truncated: those are reported as not copied, with the reason. Corrupt source data stops that id at the bad record (what
 * came before is copied) and is reported as a problem.
 */
export async function copyData(
  source: CopySource,
  target: CopyTarget,
  options: CopyOptions = {},
): Promise<Omit<CopyResult, 'verified' | 'ok'>> {
  const chunkSize = options.chunkSize ?? 500;
  const ids = await sourceIds(source);
  const progress = options.progress?.(ids.length);
  const salvage = options.salvage ? { salvage: options.salvage } : {};
  let outcomes: { result: IdCopy; problems: Problem[] }[];
  let inGlobalOrder = false;
  const walkProblems: Problem[] = [];
  const walk = source.globalOrder;
  const appendInOrder = target.appendInOrder;
  if (walk && appendInOrder && !options.salvage) {
    // Plan every id, walk the source's global order writing one id's run at a time, then finish each id
    // (what the walk left: events past a read error or a gap, then highest and snapshots).
    const works = await mapConcurrently(ids, target.parallelIds, (id) =>
      planWork(source, target, id, undefined),
    );
    const byId = new Map(works.map((w) => [w.id, w]));
    const readError = await copyInGlobalOrder(
      walk.call(source),
      { ...target, appendInOrder },
      byId,
      Math.min(chunkSize, target.maxInOrder ?? chunkSize),
    );
    inGlobalOrder = readError === undefined;
    outcomes = await mapConcurrently(works, target.parallelIds, async (work) => {
      await copyIdEvents(source, target, work, { chunkSize });
      const result = await finishId(source, target, work);
      progress?.tick();
      return { result, problems: work.problems };
    });
    if (readError !== undefined) {
      // The id's own copy met the damage again and reported it (the same problem, listed once); a
      // failure it did not meet is reported here.
      const failedId = (readError as { persistenceId?: unknown }).persistenceId;
      walkProblems.push(problemOf(readError, typeof failedId === 'string' ? failedId : ''));
    }
  } else {
    outcomes = await mapConcurrently(ids, target.parallelIds, async (id) => {
      const outcome = await copyId(source, target, id, { chunkSize, ...salvage });
      progress?.tick();
      return outcome;
    });
  }
  progress?.finish();
  const results = outcomes.map((o) => o.result);
  return {
    from: source.description,
    to: target.description,
    ids: results,
    inGlobalOrder,
    eventsCopied: results.reduce((n, r) => n + r.eventsCopied, 0),
    snapshotsCopied: results.reduce((n, r) => n + r.snapshotsCopied, 0),
    problems:
      walkProblems.length === 0
        ? outcomes.flatMap((o) => o.problems)
        : uniqueProblems([...outcomes.flatMap((o) => o.problems), ...walkProblems]),
  };
}
