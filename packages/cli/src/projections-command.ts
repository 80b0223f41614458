import {
  canQuery,
  type EventQuery,
  keepsProjectionRecords,
  type OffsetStore,
  type ProjectionRecordStore,
} from '@cairn/actor-core';
import { describeSource, listProjections, resetProjection, skipProjection } from '@cairn/projection';
import { UnsupportedError, UsageError } from './exit-codes';
import type { OpenedStores } from './open-stores';
import { type CliOutput, line } from './terminal-output';
import { isoTime, table, toJson } from './value-format';

/** The journal's queries and its offset store's projection records, or a clear refusal. */
function projectionStores(stores: OpenedStores): {
  offsets: ProjectionRecordStore;
  query: EventQuery;
} {
  const journal = stores.journal;
  if (!journal) throw new UsageError('projections needs a journal (--journal or --config)');
  const provider = stores.journalConfig?.provider ?? 'configured';
  if (!canQuery(journal)) throw new UnsupportedError(`the ${provider} journal offers no event queries`);
  const offsets: OffsetStore | undefined = stores.offsets;
  if (!offsets) throw new UnsupportedError(`the ${provider} provider keeps no projection offsets`);
  if (!keepsProjectionRecords(offsets)) {
    throw new UnsupportedError(
      `the ${provider} provider's offset store keeps no projection records (names, states) to list or change`,
    );
  }
  return { offsets, query: journal };
}

function formatLag(ms: number | undefined): string {
  if (ms === undefined) return '-';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

/** `cairn projections`: name, offset, state, source, events behind and lag of every projection. */
export async function printProjections(stores: OpenedStores, out: CliOutput, json: boolean): Promise<void> {
  const { offsets, query } = projectionStores(stores);
  const infos = await listProjections(offsets, query);
  if (json) {
    // Unknown values are null in machine output (not the {"$undefined": true} of decoded messages).
    line(
      out.stdout,
      toJson(
        infos.map((p) => ({
          name: p.name,
          state: p.state,
          offset: p.offset ?? null,
          behind: p.behind ?? null,
          lagMs: p.lagMs ?? null,
          source: p.source ?? null,
          note: p.note ?? null,
          status: p.status ?? null,
        })),
      ),
    );
    return;
  }
  if (infos.length === 0) {
    line(out.stderr, 'no projections');
    return;
  }
  line(
    out.stdout,
    table(
      ['NAME', 'STATE', 'OFFSET', 'BEHIND', 'LAG', 'SOURCE', 'UPDATED'],
      infos.map((p) => [
        p.name,
        p.state,
        p.offset ?? '(start)',
        p.behind === undefined ? '-' : String(p.behind),
        formatLag(p.lagMs),
        p.source ? describeSource(p.source) : '-',
        p.status ? isoTime(p.status.updatedAt) : '-',
      ]),
    ),
  );
  for (const p of infos) if (p.note) line(out.stdout, `${p.name}: ${p.note}`);
}

/** `cairn projections reset NAME [--to OFFSET]`. */
export async function resetCommand(
  stores: OpenedStores,
  name: string,
  to: string | undefined,
  out: CliOutput,
  json: boolean,
): Promise<void> {
  const { offsets, query } = projectionStores(stores);
  await checkKnown(offsets, name);
  try {
    await resetProjection(offsets, query, name, to);
  } catch (e) {
    if (e instanceof TypeError) throw new UsageError(`--to: ${e.message}`);
    throw e;
  }
  if (json) line(out.stdout, toJson({ name, reset: true, offset: to ?? null }));
  else
    line(
      out.stdout,
      to === undefined
        ? `projection "${name}" reset: its next run handles every event from the first`
        : `projection "${name}" reset: its next run resumes after ${to}`,
    );
}

/** `cairn projections skip NAME`: past the one event after its offset, logged. */
export async function skipCommand(
  stores: OpenedStores,
  name: string,
  out: CliOutput,
  json: boolean,
): Promise<void> {
  const { offsets, query } = projectionStores(stores);
  await checkKnown(offsets, name);
  const skipped = await skipProjection(offsets, query, name);
  const what = {
    name,
    skipped: {
      persistenceId: skipped.persistenceId,
      sequenceNr: skipped.sequenceNr,
      offset: skipped.offset,
      timestamp: skipped.timestamp,
      tags: skipped.tags,
      message: skipped.message,
    },
  };
  if (json) line(out.stdout, toJson(what));
  else
    line(
      out.stdout,
      `projection "${name}" skipped ${skipped.persistenceId} #${skipped.sequenceNr} (offset ${skipped.offset}); ` +
        'its next run resumes after it. The skip is recorded in its status.',
    );
  // The log an operator keeps: what was skipped, on stderr even with --json.
  line(out.stderr, `skipped: ${toJson(what.skipped)}`);
}

async function checkKnown(offsets: ProjectionRecordStore, name: string): Promise<void> {
  if (name.length === 0) throw new UsageError('the projection name must not be empty');
  if (!(await offsets.names()).includes(name)) throw new UsageError(`no projection "${name}"`);
}
