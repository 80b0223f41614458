import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { PersistenceReport } from '@cairn/actor-core';
import { copyData, type SalvageOutcome } from './copy';
import {
  type CopySource,
  type CopyTarget,
  dumpAsSource,
  dumpAsTarget,
  storesAsSource,
  storesAsTarget,
} from './copy-adapters';
import { verifyCopy, verifyOrder } from './copy-verify';
import { DumpReader, DumpWriter } from './dump-file';
import { EXIT_OK, EXIT_PROBLEMS, UsageError } from './exit-codes';
import { openStores } from './open-stores';
import { ProgressBar } from './progress-bar';
import { readConfigFile, resolveStores } from './store-location';
import { type CliOutput, line, printProblems } from './terminal-output';
import { toJson } from './value-format';
import { type Problem, reportProblem, uniqueProblems } from './verify';

/** The flags of `cairn copy`. */
export interface CopyCommandOptions {
  readonly from?: string;
  readonly fromDump?: string;
  readonly to?: string;
  readonly toDump?: string;
  readonly chunk?: number;
  /** Copy what verifies from a damaged store; the readable events after damage go to the quarantine dump. */
  readonly salvage?: boolean;
  /** Where a salvage puts the readable events after damaged records (a dump). */
  readonly quarantine?: string;
}

/**
 * `cairn copy`: checks both ends before opening either, opens them, copies, closes the target (its last
 * sync is part of the copy), then reads both back to compare, and prints the outcome. Resolves to the
 * exit code.
 */
export async function copyCommand(opts: CopyCommandOptions, json: boolean, out: CliOutput): Promise<number> {
  if (opts.from === undefined && opts.fromDump === undefined)
    throw new UsageError('copy needs --from <config> or --from-dump <file>');
  if (opts.to === undefined && opts.toDump === undefined)
    throw new UsageError('copy needs --to <config> or --to-dump <file>');
  if (opts.fromDump !== undefined && opts.fromDump === opts.toDump)
    throw new UsageError('--from-dump and --to-dump name the same file');
  if (opts.salvage && opts.from === undefined) {
    throw new UsageError(
      '--salvage copies from a damaged store: it needs --from <config> (a dump is all or nothing)',
    );
  }
  if (opts.quarantine !== undefined && !opts.salvage)
    throw new UsageError('--quarantine goes with --salvage');
  const quarantineFile = opts.salvage
    ? path.resolve(opts.quarantine ?? `cairn-salvage-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`)
    : undefined;
  if (quarantineFile !== undefined) {
    if (!(await isDirectory(path.dirname(quarantineFile))))
      throw new UsageError(
        `--quarantine ${opts.quarantine}: no such directory ${path.dirname(quarantineFile)}`,
      );
    if (await isFile(quarantineFile))
      throw new UsageError(`--quarantine ${quarantineFile}: already exists; name a new file`);
  }
  if (opts.toDump !== undefined && !(await isDirectory(path.dirname(path.resolve(opts.toDump))))) {
    throw new UsageError(`--to-dump ${opts.toDump}: no such directory ${path.dirname(opts.toDump)}`);
  }
  // Check both ends before opening either, so a typo changes nothing.
  const sourceStores =
    opts.from === undefined
      ? undefined
      : await resolveStores({ config: opts.from }, true, { withEnvironment: false });
  const targetConfig = opts.to === undefined ? undefined : await readConfigFile(opts.to, '--to');
  const closers: Array<() => Promise<void>> = [];
  // What the backends of both ends report: a corrupt snapshot skipped in the source is a problem
  // (an older one was copied instead), a lock taken over or a torn tail cut back is a note.
  const reports: PersistenceReport[][] = [];
  try {
    let source: CopySource;
    if (sourceStores) {
      const opened = await openStores(sourceStores, { readOnly: true });
      closers.push(() => opened.close());
      reports.push(opened.reports);
      source = storesAsSource(opened, `${opened.journalDescription} + ${opened.snapshotsDescription}`);
    } else {
      if (!(await isFile(opts.fromDump!))) throw new UsageError(`--from-dump ${opts.fromDump}: no such file`);
      const dump = await DumpReader.open(opts.fromDump!);
      closers.push(() => dump.close());
      if (dump.notCopied.length > 0) {
        line(
          out.stderr,
          `note: the copy that wrote ${opts.fromDump} left out ${dump.notCopied.map((id) => JSON.stringify(id)).join(', ')}`,
        );
      }
      source = dumpAsSource(dump);
    }
    let target: CopyTarget;
    let readBack: (notCopied: string[]) => Promise<CopySource>;
    if (targetConfig) {
      const opened = await openStores({
        journal: targetConfig.journal,
        snapshots: targetConfig.snapshots,
        source: opts.to!,
        overrides: [],
      });
      closers.push(() => opened.close());
      reports.push(opened.reports);
      const description = `${opened.journalDescription} + ${opened.snapshotsDescription}`;
      target = storesAsTarget(opened.journal, opened.snapshots, description);
      readBack = async () => storesAsSource(opened, description);
    } else {
      const writer = await DumpWriter.open(opts.toDump!);
      closers.push(() => writer.close());
      target = dumpAsTarget(writer);
      if (writer.tornBytesRemoved > 0) {
        line(
          out.stderr,
          `note: cut ${writer.tornBytesRemoved} byte(s) of a line torn by an interrupted copy off ${opts.toDump}`,
        );
      }
      readBack = async (notCopied) => {
        await writer.finish(notCopied);
        const dump = await DumpReader.open(opts.toDump!);
        closers.push(() => dump.close());
        return dumpAsSource(dump);
      };
    }
    let quarantine: DumpWriter | undefined;
    if (quarantineFile !== undefined) {
      quarantine = await DumpWriter.open(quarantineFile);
      closers.push(() => quarantine!.close());
    }
    const copied = await copyData(source, target, {
      progress: (ids) => new ProgressBar(out.stderr, 'copying', ids),
      ...(opts.chunk === undefined ? {} : { chunkSize: opts.chunk }),
      ...(quarantine ? { salvage: { quarantine: dumpAsTarget(quarantine) } } : {}),
    });
    await quarantine?.finish();
    const leftOut = copied.ids.filter((i) => i.notCopied !== undefined).map((i) => i.persistenceId);
    const copy = await readBack(leftOut);
    const verification = await verifyCopy(source, copy, copied.ids, {
      timestamps: target.keepsTimestamps,
      tags: target.keepsTags,
      snapshotTimestamps: target.keepsSnapshotTimestamps,
    });
    // Copied in the source's global order: the copy's queries must deliver them in that order.
    const order = copied.inGlobalOrder ? await verifyOrder(source, copy, copied.ids) : undefined;
    // A target that fails to close (its last sync) is not known to hold the copy.
    const closeErrors = await closeAll(closers);
    if (closeErrors.length > 0) throw closeErrors[0];
    const notes: string[] = [];
    const reported: Problem[] = [];
    for (const report of reports.flat()) {
      const problem = reportProblem(report);
      if (problem) reported.push(problem);
      else notes.push(`${report.kind}: ${report.message}`);
    }
    const problems = [
      ...copied.problems,
      ...uniqueProblems(reported),
      ...verification.problems,
      ...(order?.problems ?? []),
    ];
    const notCopied = copied.ids.filter((i) => i.notCopied !== undefined);
    const ok = problems.length === 0 && notCopied.length === 0;
    if (json)
      line(
        out.stdout,
        toJson({
          ...copied,
          problems,
          notes,
          verified: {
            events: verification.events,
            snapshots: verification.snapshots,
            ...(order ? { inGlobalOrder: order.events } : {}),
          },
          ok,
        }),
      );
    else {
      line(out.stdout, `from: ${copied.from}`);
      line(out.stdout, `to: ${copied.to}`);
      const resumed = copied.ids.reduce((n, i) => n + i.eventsAlreadyThere, 0);
      line(
        out.stdout,
        `${copied.ids.length} id(s): ${copied.eventsCopied} event(s) and ${copied.snapshotsCopied} snapshot(s) copied` +
          (resumed > 0 ? `, ${resumed} event(s) already there` : ''),
      );
      line(
        out.stdout,
        `verified: ${verification.events} event(s) and ${verification.snapshots} snapshot(s) equal in source and copy`,
      );
      if (order && order.problems.length === 0) {
        line(out.stdout, `order: ${order.events} event(s) in the source's global order`);
      }
      for (const n of notes) line(out.stdout, `note: ${n}`);
      for (const i of notCopied) line(out.stdout, `not copied: "${i.persistenceId}": ${i.notCopied}`);
      for (const i of copied.ids)
        if (i.salvaged) line(out.stdout, describeSalvage(i.persistenceId, i.salvaged));
      if (quarantineFile !== undefined) {
        const salvaged = copied.ids.filter((i) => i.salvaged).length;
        line(
          out.stdout,
          salvaged === 0
            ? `salvage: nothing was damaged (${quarantineFile} holds no events)`
            : `salvage: ${salvaged} id(s) cut back at damaged records; the readable events after them are in ${quarantineFile} ` +
                '(cairn copy --from-dump can load it into a scratch store to inspect)',
        );
      }
      if (problems.length > 0) {
        line(out.stdout, `${problems.length} problem(s):`);
        printProblems(out, problems);
      }
      if (ok) line(out.stdout, 'OK');
    }
    return ok ? EXIT_OK : EXIT_PROBLEMS;
  } finally {
    // Already closed on success (above); here only when something failed, whose error wins.
    await closeAll(closers);
  }
}

/** One line per salvaged id: what the target kept, what went to the quarantine, what is lost. */
function describeSalvage(id: string, s: SalvageOutcome): string {
  const quarantined = s.quarantinedRange
    ? `events ${s.quarantinedRange.first}..${s.quarantinedRange.last} quarantined`
    : 'nothing after it to quarantine';
  const lost = s.lost > 0 ? `, ${s.lost} later event(s) not readable past the damage` : '';
  return `salvaged: "${id}": kept events up to ${s.keptThrough} (its highestSequenceNr in the target), unreadable ${s.unreadable.join(', ')}, ${quarantined}${lost}`;
}

/** Runs and forgets every closer, last opened first; resolves to the errors they threw. */
async function closeAll(closers: Array<() => Promise<void>>): Promise<unknown[]> {
  const errors: unknown[] = [];
  for (let close = closers.pop(); close; close = closers.pop()) {
    await close().catch((e: unknown) => errors.push(e));
  }
  return errors;
}

async function isDirectory(dir: string): Promise<boolean> {
  return stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

async function isFile(file: string): Promise<boolean> {
  return stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
}
