import { isDeepStrictEqual } from 'node:util';
import { isPersistenceError, JournalCorruptedError, type JournalEntry } from '@cairn/actor-core';
import { mapConcurrently } from './bounded-concurrency';
import { type CopySource, type CopyTarget, snapshotChain } from './copy-adapters';
import type { ProgressBar } from './progress-bar';
import { type Problem, problemOf } from './verify';

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

/** What copying one id comes to before any event moves: copy events from `first`, or not at all (why). */
type IdPlan =
  | { readonly copy: 'events'; readonly first: JournalEntry }
  | { readonly copy: 'nothing'; readonly first: JournalEntry | undefined; readonly notCopied?: string };

/**
 * Decides what to do with one id: nothing when the target is ahead, when its events are not the start of
 * the source's (another history), or when a journal written through the public API cannot keep the
 * numbering (events truncated at the start, or all of them); the highest alone when every event was
 * truncated and the target keeps numbering; otherwise copy the events.
 */
async function planId(
  source: CopySource,
  target: CopyTarget,
  id: string,
  sourceHighest: number,
  already: number,
  problems: Problem[],
): Promise<IdPlan> {
  let first: JournalEntry | undefined;
  try {
    first = await firstEvent(source, id);
  } catch (e) {
    problems.push(problemOf(e, id));
    return { copy: 'nothing', first, notCopied: `its first event cannot be read: ${(e as Error).message}` };
  }
  if (already > sourceHighest) {
    return {
      copy: 'nothing',
      first,
      notCopied: `the target is ahead (highestSequenceNr ${already} there, ${sourceHighest} in the source)`,
    };
  }
  if (first === undefined) {
    if (sourceHighest === 0 || target.keepsNumbering) return { copy: 'nothing', first };
    return {
      copy: 'nothing',
      first,
      notCopied: `every event was truncated (highestSequenceNr ${sourceHighest}); the journal API cannot record a highestSequenceNr without events`,
    };
  }
  if (first.sequenceNr > 1 && !target.keepsNumbering) {
    return {
      copy: 'nothing',
      first,
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
  return diverged === undefined ? { copy: 'events', first } : { copy: 'nothing', first, notCopied: diverged };
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

/** Copies one id (see copyData); its outcome and the problems met. */
async function copyId(
  source: CopySource,
  target: CopyTarget,
  id: string,
  options: { readonly chunkSize: number; readonly salvage?: CopyOptions['salvage'] },
): Promise<{ result: IdCopy; problems: Problem[] }> {
  const problems: Problem[] = [];
  const sourceHighest = await source.highestSequenceNr(id);
  const startedAt = await target.highestSequenceNr(id);
  let plan = await planId(source, target, id, sourceHighest, startedAt, problems);
  if (
    options.salvage &&
    plan.copy === 'nothing' &&
    plan.first === undefined &&
    plan.notCopied?.startsWith('its first event cannot be read')
  ) {
    // Salvage an id whose very first event is damaged: nothing is kept, the rest is quarantined.
    problems.pop();
    plan = {
      copy: 'events',
      first: { persistenceId: id, sequenceNr: 1, timestamp: 0, message: undefined, tags: [] },
    };
  }
  let notCopied = plan.copy === 'nothing' ? plan.notCopied : undefined;
  let salvaged: SalvageOutcome | undefined;
  let eventsCopied = 0;
  const progress = { already: startedAt };
  try {
    let readError: unknown;
    if (plan.copy === 'events') {
      const from = Math.max(plan.first.sequenceNr, startedAt + 1);
      ({ copied: eventsCopied, readError } = await copyEvents(
        source,
        target,
        id,
        from,
        sourceHighest,
        options.chunkSize,
        progress,
      ));
    }
    if (readError !== undefined) {
      problems.push(problemOf(readError, id));
      const damaged = damagedSequenceNr(readError);
      if (options.salvage && damaged !== undefined) {
        salvaged = await quarantineTail(
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
        notCopied = `copying stopped after sequenceNr ${progress.already}: ${(readError as Error).message}`;
      }
    } else if (notCopied === undefined && target.keepsNumbering && sourceHighest > 0) {
      await target.markHighest(id, sourceHighest);
    }
  } catch (e) {
    problems.push(problemOf(e, id));
    notCopied = `copying stopped after sequenceNr ${progress.already}: ${(e as Error).message}`;
  }
  let snapshots = { copied: 0, alreadyThere: 0 };
  // Snapshots only where the events are complete: a snapshot ahead of its journal would make the
  // target recover to a state its events do not reach (after a salvage: up to what was kept).
  const { loadLatest } = source;
  if (notCopied === undefined && target.hasSnapshots && loadLatest) {
    try {
      snapshots = await copySnapshots({ ...source, loadLatest }, target, id, salvaged?.keptThrough);
    } catch (e) {
      problems.push(problemOf(e, id));
      notCopied = `snapshots not copied: ${(e as Error).message}`;
    }
  }
  await target.idDone(id);
  return {
    problems,
    result: {
      persistenceId: id,
      sourceHighest,
      eventsCopied,
      eventsAlreadyThere: Math.max(0, startedAt - Math.max(0, (plan.first?.sequenceNr ?? 1) - 1)),
      snapshotsCopied: snapshots.copied,
      snapshotsAlreadyThere: snapshots.alreadyThere,
      ...(notCopied === undefined ? {} : { notCopied }),
      ...(salvaged === undefined ? {} : { salvaged }),
    },
  };
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
  const outcomes = await mapConcurrently(ids, target.parallelIds, async (id) => {
    const outcome = await copyId(source, target, id, {
      chunkSize,
      ...(options.salvage ? { salvage: options.salvage } : {}),
    });
    progress?.tick();
    return outcome;
  });
  progress?.finish();
  const results = outcomes.map((o) => o.result);
  return {
    from: source.description,
    to: target.description,
    ids: results,
    eventsCopied: results.reduce((n, r) => n + r.eventsCopied, 0),
    snapshotsCopied: results.reduce((n, r) => n + r.snapshotsCopied, 0),
    problems: outcomes.flatMap((o) => o.problems),
  };
}
