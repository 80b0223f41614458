import {
  canQuery,
  type EventEnvelope,
  type JournalEntry,
  type MessageJournal,
  seesForeignCommits,
} from '@cairn/actor-core';
import { EXIT_NOT_FOUND, EXIT_OK, EXIT_PROBLEMS, UnsupportedError, UsageError } from './exit-codes';
import type { OpenedStores } from './open-stores';
import { type CliOutput, line } from './terminal-output';
import { isoTime, toJson, toText } from './value-format';
import { formatProblem, problemOf } from './verify';

/** What `cairn events` was asked for: one id's events, or every event, or one tag's, in the global order. */
export interface EventsCommandOptions {
  readonly from?: number;
  readonly to?: number;
  readonly max?: number;
  readonly all?: boolean;
  readonly tag?: string;
  readonly after?: string;
  readonly follow?: boolean;
}

type Selection =
  | { readonly kind: 'id'; readonly id: string }
  | { readonly kind: 'all' }
  | { readonly kind: 'tag'; readonly tag: string };

/** Checks the combination of arguments before anything is opened. */
export function eventsSelection(id: string | undefined, opts: EventsCommandOptions): Selection {
  const chosen = [id !== undefined, opts.all === true, opts.tag !== undefined].filter(Boolean).length;
  if (chosen !== 1) {
    throw new UsageError('events needs exactly one of: an id, --all, or --tag <tag>');
  }
  if (id !== undefined) {
    if (id.length === 0) throw new UsageError('the id must not be empty');
    return { kind: 'id', id };
  }
  if (opts.from !== undefined || opts.to !== undefined) {
    throw new UsageError(
      "--from and --to bound one id's sequenceNrs; with --all or --tag use --after <offset>",
    );
  }
  if (opts.tag !== undefined) {
    if (opts.tag.length === 0) throw new UsageError('the tag must not be empty');
    return { kind: 'tag', tag: opts.tag };
  }
  return { kind: 'all' };
}

/**
 * Prints events: tab-separated lines for people, one JSON object per line with --json. An id's events
 * come from `readFrom` (sequenceNr, time, tags, message) unless --after or --follow asks for the query;
 * --all and --tag read the journal's global order and print each event's offset first, so a later
 * `--after <offset>` continues where this listing ended. --follow keeps printing new events as the
 * application commits them until `signal` aborts (Ctrl-C), and exits 0 then.
 */
export async function printEvents(
  selection: Selection,
  opts: EventsCommandOptions,
  stores: OpenedStores,
  out: CliOutput,
  json: boolean,
  signal: AbortSignal | undefined,
): Promise<number> {
  const journal = stores.journal;
  if (!journal) throw new UsageError('events needs a journal (--journal or --config)');
  if (selection.kind === 'id' && opts.after === undefined && !opts.follow) {
    return printIdEvents(journal, selection.id, opts, out, json);
  }
  if (!canQuery(journal)) {
    throw new UnsupportedError(
      `the ${stores.journalConfig?.provider ?? 'configured'} journal offers no event queries (--all, --tag, --after, --follow)`,
    );
  }
  if (opts.follow) checkFollowable(journal, stores);
  const controller = new AbortController();
  const abort = () => controller.abort(signal?.reason);
  if (signal?.aborted) abort();
  signal?.addEventListener('abort', abort, { once: true });
  const query = {
    ...(opts.after === undefined ? {} : { after: opts.after }),
    live: opts.follow === true,
    signal: controller.signal,
  };
  const events =
    selection.kind === 'all'
      ? journal.allEvents(query)
      : selection.kind === 'tag'
        ? journal.eventsByTag(selection.tag, query)
        : journal.eventsByPersistenceId(selection.id, query);
  let count = 0;
  try {
    for await (const e of events) {
      if (opts.max !== undefined && count >= opts.max) break;
      count++;
      line(out.stdout, json ? envelopeJson(e) : envelopeText(e));
      if (opts.max !== undefined && count >= opts.max) break;
    }
  } catch (e) {
    if (controller.signal.aborted && (e as Error)?.name === 'AbortError') return EXIT_OK;
    if (e instanceof TypeError) throw new UsageError(e.message);
    const named = (e as { persistenceId?: unknown } | undefined)?.persistenceId;
    const problem = problemOf(
      e,
      selection.kind === 'id' ? selection.id : typeof named === 'string' ? named : '(global order)',
    );
    if (json) line(out.stdout, toJson({ problem }));
    line(out.stderr, `error after ${count} event(s): ${formatProblem(problem)}`);
    return EXIT_PROBLEMS;
  } finally {
    signal?.removeEventListener('abort', abort);
  }
  if (count === 0 && !json) {
    line(out.stderr, opts.after === undefined ? 'no events' : `no events after ${opts.after}`);
  }
  return EXIT_OK;
}

/**
 * --follow runs beside the application, in another process: refused unless the journal, opened here,
 * notices what another process commits (the journal declares it in its capabilities).
 */
function checkFollowable(journal: MessageJournal, stores: OpenedStores): void {
  if (!seesForeignCommits(journal)) {
    throw new UnsupportedError(
      `--follow: the ${stores.journalConfig?.provider ?? 'configured'} journal opened by cairn does not see ` +
        'events another process commits while it runs; list what is there without --follow, and run it again ' +
        'with --after <the last offset printed>',
    );
  }
}

async function printIdEvents(
  journal: MessageJournal,
  id: string,
  opts: EventsCommandOptions,
  out: CliOutput,
  json: boolean,
): Promise<number> {
  let count = 0;
  try {
    for await (const e of journal.readFrom(id, opts.from ?? 1, {
      ...(opts.to === undefined ? {} : { toSequenceNr: opts.to }),
      ...(opts.max === undefined ? {} : { max: opts.max }),
    })) {
      count++;
      line(
        out.stdout,
        json
          ? entryJson(e)
          : `${e.sequenceNr}\t${isoTime(e.timestamp)}\t${tagsText(e)}\t${toText(e.message)}`,
      );
    }
  } catch (e) {
    const problem = problemOf(e, id);
    if (json) line(out.stdout, toJson({ problem }));
    line(out.stderr, `error after ${count} event(s): ${formatProblem(problem)}`);
    return EXIT_PROBLEMS;
  }
  if (count === 0) {
    const highest = await journal.highestSequenceNr(id);
    if (!json) {
      line(
        out.stderr,
        highest === 0
          ? `not found: no id "${id}" in the journal`
          : `no events in that range (highestSequenceNr ${highest})`,
      );
    }
    // An id that is not there is the caller's mistake, never a clean (empty) listing.
    if (highest === 0) return EXIT_NOT_FOUND;
  }
  return EXIT_OK;
}

/** "a,b", or "-" for an event without tags (so the columns stay aligned for `cut`). */
function tagsText(e: JournalEntry): string {
  return e.tags.length === 0 ? '-' : e.tags.join(',');
}

function entryJson(e: JournalEntry): string {
  return toJson({
    persistenceId: e.persistenceId,
    sequenceNr: e.sequenceNr,
    timestamp: e.timestamp,
    tags: e.tags,
    message: e.message,
  });
}

function envelopeJson(e: EventEnvelope): string {
  return toJson({
    offset: e.offset,
    persistenceId: e.persistenceId,
    sequenceNr: e.sequenceNr,
    timestamp: e.timestamp,
    tags: e.tags,
    message: e.message,
  });
}

function envelopeText(e: EventEnvelope): string {
  return `${e.offset}\t${e.persistenceId}\t${e.sequenceNr}\t${isoTime(e.timestamp)}\t${tagsText(e)}\t${toText(e.message)}`;
}
