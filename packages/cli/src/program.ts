import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { isPersistenceError } from '@cairn/actor-core';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { compactJournal } from './compact-command';
import { type CopyCommandOptions, copyCommand } from './copy-command';
import { type EventsCommandOptions, eventsSelection, printEvents } from './events-command';
import {
  EXIT_NOT_FOUND,
  EXIT_OK,
  EXIT_PROBLEMS,
  EXIT_UNSUPPORTED,
  EXIT_USAGE,
  UnsupportedError,
  UsageError,
} from './exit-codes';
import { type DirectoryStats, listIds, storeStats } from './inventory';
import { type OpenedStores, openStores } from './open-stores';
import { ProgressBar } from './progress-bar';
import { printProjections, resetCommand, skipCommand } from './projections-command';
import { planRepair, repairAfterCorruption } from './repair';
import { describeRepair, hasRepairHistory } from './repair-history';
import { resolveStores, type StoreSelection } from './store-location';
import { type CliOutput, line, printProblems } from './terminal-output';
import { humanBytes, isoTime, table, toJson, toText } from './value-format';
import { formatProblem, type Problem, problemOf, verifyStores, walkSnapshots } from './verify';

/** The version in this package's package.json (one level above src/ and dist/). */
function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}

interface GlobalOptions extends StoreSelection {
  readonly json?: boolean;
}

function sequenceNrArg(name: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value))
      throw new InvalidArgumentError(`${name} must be a whole number, got "${value}"`);
    const n = Number(value);
    if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} is too large: ${value}`);
    return n;
  };
}

function positive(name: string): (value: string) => number {
  const parse = sequenceNrArg(name);
  return (value) => {
    const n = parse(value);
    if (n < 1) throw new InvalidArgumentError(`${name} must be at least 1, got ${value}`);
    return n;
  };
}

/** A store's line of `cairn stats`: its directory's sizes, or where it is when it has no directory. */
function directoryLine(label: string, d: DirectoryStats | undefined, store: string): string {
  if (!d) return `${label}: ${store}`;
  const extra = d.kinds.map((k) => `${k.label}: ${k.count} (${humanBytes(k.bytes)})`);
  return `${label}: ${d.backend} ${d.path}: ${humanBytes(d.bytes)} in ${d.files} file(s)${extra.length > 0 ? ` (${extra.join('; ')})` : ''}`;
}

/** How a caller controls a running `cairn` command. */
export interface RunCliOptions {
  /**
   * Called by a command that runs until stopped (`events --follow`) when it starts: the signal it returns
   * ends that command, which then closes what it opened and exits 0. Without it such a command runs until
   * the process ends. The `cairn` binary aborts it on SIGINT or SIGTERM.
   */
  readonly untilStopped?: () => AbortSignal;
}

/**
 * Runs `cairn` with `argv` (without the node and script paths) and resolves to the exit code; never
 * calls process.exit, so it can run inside another process (the tests do) and always closes what it
 * opened first.
 */
export async function runCli(
  argv: readonly string[],
  out: CliOutput,
  options: RunCliOptions = {},
): Promise<number> {
  let exitCode = EXIT_OK;
  const program = new Command('cairn')
    .description(
      'Inspect, check, repair and copy Cairn journals and snapshot stores (file and lmdb backends).',
    )
    .exitOverride()
    .configureOutput({
      writeOut: (s) => out.stdout.write(s),
      writeErr: (s) => out.stderr.write(s),
    })
    .showHelpAfterError('(run cairn --help for usage)')
    .version(packageVersion(), '-V, --version')
    .option('-c, --config <file>', 'a cairn.config.json naming the journal and snapshot store')
    .option('-j, --journal <dir>', 'a journal directory (backend detected: lmdb or file)')
    .option('-s, --snapshots <dir>', 'a snapshot directory (backend detected: lmdb or file)')
    .option('--json', 'machine-readable output on stdout');

  const globals = (cmd: Command) => cmd.optsWithGlobals<GlobalOptions>();
  // Every command but repair only reads: open read-only where the backend can.
  const openSelected = async (cmd: Command, options: { readOnly?: boolean } = { readOnly: true }) => {
    const resolved = await resolveStores(globals(cmd));
    // The variables redirect the application, so they redirect cairn too; say so, naming them.
    if (resolved.overrides.length > 0) {
      line(
        out.stderr,
        `cairn: ${resolved.overrides.join(', ')} override${resolved.overrides.length === 1 ? 's' : ''} ${resolved.source}, as for the application`,
      );
    }
    return openStores(resolved, options);
  };

  program
    .command('verify')
    .description(
      'read every event and snapshot: checksums, sequence continuity, recoverability; exit 1 when anything is wrong',
    )
    .argument('[ids...]', 'only these persistence ids (default: all)')
    .action(async (ids: string[], _opts, cmd: Command) => {
      const json = globals(cmd).json === true;
      if (ids.some((id) => id.length === 0)) throw new UsageError('an id must not be empty');
      const result = await withOpened(await openSelected(cmd), (stores) =>
        verifyStores(stores, {
          ...(ids.length > 0 ? { ids } : {}),
          progress: (total) => new ProgressBar(out.stderr, 'verifying', total),
        }),
      );
      if (json) line(out.stdout, toJson(result));
      else {
        line(out.stdout, `journal: ${result.journal}`);
        line(out.stdout, `snapshots: ${result.snapshots}`);
        line(
          out.stdout,
          `${result.ids} id(s), ${result.events} event(s) read, ${result.snapshotsVerified} snapshot(s) verified`,
        );
        for (const n of result.notes) line(out.stdout, `note: ${n}`);
        for (const h of result.history) line(out.stdout, `history: ${h}`);
        if (result.problems.length > 0) {
          line(out.stdout, `${result.problems.length} problem(s):`);
          printProblems(out, result.problems);
        }
        for (const id of result.missingIds)
          line(out.stderr, `not found: no id "${id}" in these stores (no events, no snapshots)`);
        if (result.ok) line(out.stdout, 'OK: no problems found');
      }
      // Problems come first; an id that is not there is the caller's mistake, never an OK.
      exitCode =
        result.problems.length > 0 ? EXIT_PROBLEMS : result.missingIds.length > 0 ? EXIT_NOT_FOUND : EXIT_OK;
    });

  program
    .command('ls')
    .description('list ids: highest sequenceNr, first surviving sequenceNr (low-water mark), event count')
    .action(async (_opts, cmd: Command) => {
      const rows = await withOpened(await openSelected(cmd), listIds);
      if (globals(cmd).json) line(out.stdout, toJson(rows));
      else {
        const withSnapshots = rows.some((r) => r.snapshots !== undefined);
        line(
          out.stdout,
          table(
            ['ID', 'HIGHEST', 'FIRST', 'EVENTS', ...(withSnapshots ? ['SNAPSHOTS'] : [])],
            rows.map((r) => [
              r.persistenceId,
              String(r.highestSequenceNr),
              r.firstSequenceNr === undefined ? '-' : String(r.firstSequenceNr),
              r.problem ? `unreadable: ${r.problem.message}` : r.deleted ? 'deleted' : String(r.events),
              ...(withSnapshots ? [r.snapshots === undefined ? '?' : String(r.snapshots)] : []),
            ]),
          ),
        );
      }
      if (rows.some((r) => r.problem)) exitCode = EXIT_PROBLEMS;
    });

  program
    .command('events [id]')
    .description(
      "print decoded events with their tags: one id's, or every event (--all) or one tag's (--tag) in the journal's global order",
    )
    .option('--from <sequenceNr>', 'with an id: first sequenceNr (default 1)', positive('--from'))
    .option('--to <sequenceNr>', 'with an id: last sequenceNr, inclusive', positive('--to'))
    .option('--max <count>', 'at most this many events', sequenceNrArg('--max'))
    .option('--all', "every event, in the journal's global order, each with its offset")
    .option('--tag <tag>', 'the events stored with this tag, in the global order, each with its offset')
    .option('--after <offset>', 'start just after this offset (one printed by an earlier listing)')
    .option(
      '--follow',
      'keep printing events as they are committed, beside the running application (Ctrl-C ends)',
    )
    .action(async (id: string | undefined, opts: EventsCommandOptions, cmd: Command) => {
      const selection = eventsSelection(id, opts);
      const json = globals(cmd).json === true;
      exitCode = await withOpened(await openSelected(cmd), (stores) =>
        printEvents(selection, opts, stores, out, json, opts.follow ? options.untilStopped?.() : undefined),
      );
    });

  const projections = program
    .command('projections')
    .description(
      'list projections: name, state, saved offset, events behind, lag, source (reset and skip change stopped ones)',
    )
    .action(async (_opts, cmd: Command) => {
      await withOpened(await openSelected(cmd), (stores) =>
        printProjections(stores, out, globals(cmd).json === true),
      );
    });
  projections
    .command('reset <name>')
    .description("move a stopped projection's offset to the start, or to --to OFFSET")
    .option('--to <offset>', 'resume just after this offset (one printed by cairn events --all)')
    .action(async (name: string, opts: { to?: string }, cmd: Command) => {
      await withOpened(await openSelected(cmd, { readOnly: false }), (stores) =>
        resetCommand(stores, name, opts.to, out, globals(cmd).json === true),
      );
    });
  projections
    .command('skip <name>')
    .description('move a stopped projection past the one event after its offset (a poison event); logged')
    .action(async (name: string, _opts, cmd: Command) => {
      await withOpened(await openSelected(cmd, { readOnly: false }), (stores) =>
        skipCommand(stores, name, out, globals(cmd).json === true),
      );
    });

  program
    .command('snapshots <id>')
    .description(
      'list the snapshots of one id that verify, newest first, and report corrupt ones; ' +
        '`snapshots delete <id> --above <n>` deletes those past sequenceNr n',
    )
    .argument('[id]', 'with delete: the id')
    .option('--state', 'print each state too')
    .option(
      '--above <sequenceNr>',
      'with delete: delete the snapshots above this sequenceNr',
      sequenceNrArg('--above'),
    )
    .action(
      async (
        first: string,
        second: string | undefined,
        opts: { state?: boolean; above?: number },
        cmd: Command,
      ) => {
        if (first === 'delete' && second !== undefined) {
          exitCode = await deleteSnapshotsCommand(second, opts.above, globals(cmd).json === true, cmd);
          return;
        }
        if (second !== undefined)
          throw new UsageError(`snapshots takes one id, got "${first}" and "${second}"`);
        if (opts.above !== undefined)
          throw new UsageError('--above belongs to `cairn snapshots delete <id> --above <n>`');
        const id = first;
        const json = globals(cmd).json === true;
        await withOpened(await openSelected(cmd), async (stores) => {
          if (!stores.snapshots)
            throw new UsageError('snapshots needs a snapshot store (--snapshots or --config)');
          const before = stores.reports.length;
          const found: Array<{ sequenceNr: number; timestamp: number; state?: unknown }> = [];
          await walkSnapshots(stores.snapshots, id, (e) =>
            found.push({
              sequenceNr: e.sequenceNr,
              timestamp: e.timestamp,
              ...(opts.state ? { state: e.state } : {}),
            }),
          );
          const corrupt: Problem[] = stores.reports
            .slice(before)
            .filter((r) => r.kind === 'snapshot-skipped')
            .map((r) => ({ ...problemOf(r.error, id), kind: 'snapshot-corrupted' as const }));
          const unknownId =
            found.length === 0 &&
            corrupt.length === 0 &&
            (stores.journal === undefined || (await stores.journal.highestSequenceNr(id)) === 0);
          if (unknownId) exitCode = EXIT_NOT_FOUND;
          if (json) line(out.stdout, toJson({ persistenceId: id, snapshots: found, problems: corrupt }));
          else {
            if (unknownId) line(out.stderr, `not found: no id "${id}" (no snapshots, no events)`);
            else if (found.length === 0) line(out.stdout, `no snapshot of "${id}" verifies`);
            for (const s of found) {
              line(
                out.stdout,
                `${s.sequenceNr}\t${isoTime(s.timestamp)}${opts.state ? `\t${toText(s.state)}` : ''}`,
              );
            }
            if (corrupt.length > 0) {
              line(out.stdout, `${corrupt.length} corrupt snapshot(s), skipped by loadLatest:`);
              printProblems(out, corrupt);
            }
          }
          if (corrupt.length > 0) exitCode = EXIT_PROBLEMS;
        });
      },
    );

  program
    .command('stats')
    .description('ids, events, oldest and newest event, sizes of the data directories')
    .action(async (_opts, cmd: Command) => {
      const stats = await withOpened(await openSelected(cmd), storeStats);
      if (globals(cmd).json) line(out.stdout, toJson(stats));
      else {
        line(out.stdout, `ids: ${stats.ids}`);
        line(out.stdout, `events: ${stats.events}`);
        line(out.stdout, `oldest event: ${isoTime(stats.oldestTimestamp)}`);
        line(out.stdout, `newest event: ${isoTime(stats.newestTimestamp)}`);
        line(out.stdout, directoryLine('journal', stats.journal, stats.journalStore));
        line(out.stdout, directoryLine('snapshots', stats.snapshots, stats.snapshotsStore));
        if (stats.problems.length > 0) {
          line(out.stdout, `${stats.problems.length} id(s) could not be read:`);
          printProblems(out, stats.problems);
        }
      }
      if (stats.problems.length > 0) exitCode = EXIT_PROBLEMS;
    });

  program
    .command('repair')
    .description(
      'cut an id back to its last good record (file journal); refuses without --truncate-after-corruption',
    )
    .option('--truncate-after-corruption <id>', 'the id to cut back to its last good record')
    .option(
      '--acknowledge <id>',
      "record that the id's repairs were checked: its cut records become history, no longer reported",
    )
    .action(async (opts: { truncateAfterCorruption?: string; acknowledge?: string }, cmd: Command) => {
      if (opts.acknowledge !== undefined) {
        if (opts.truncateAfterCorruption !== undefined) {
          throw new UsageError('give --truncate-after-corruption or --acknowledge, not both');
        }
        exitCode = await acknowledgeCommand(opts.acknowledge, globals(cmd).json === true);
        return;
      }
      const id = opts.truncateAfterCorruption;
      if (id === undefined || id.length === 0) {
        throw new UsageError(
          'repair changes data and needs an explicit --truncate-after-corruption <id>; run cairn verify first to see what is wrong',
        );
      }
      const json = globals(cmd).json === true;
      await withOpened(await openSelected(cmd, { readOnly: false }), async (stores) => {
        if (!stores.journal) throw new UsageError('repair needs a journal (--journal or --config)');
        const plan = await planRepair(stores.journal, id);
        if (!plan.problem) {
          if (json) line(out.stdout, toJson({ plan, repaired: false }));
          else
            line(
              out.stdout,
              `"${id}" reads back clean through sequenceNr ${plan.highestSequenceNr}: nothing to repair, nothing changed`,
            );
          return;
        }
        if (!json) {
          line(out.stdout, `"${id}": ${formatProblem(plan.problem)}`);
          line(
            out.stdout,
            `a repair keeps sequenceNr 1..${plan.lastGood} and cuts ${plan.lost!.first}..${plan.lost!.last} (${plan.lost!.last - plan.lost!.first + 1} event(s))`,
          );
        }
        const done = await repairAfterCorruption(
          stores.journal,
          stores.journalConfig?.provider ?? 'configured',
          plan,
        );
        // A snapshot taken after the cut holds state of events that no longer exist: recovering from
        // it and appending again under the reused numbers would apply two different histories.
        const ahead = stores.snapshots
          ? await stores.snapshots.loadLatest(id).then(
              (s) => (s && s.sequenceNr > done.keptThrough ? s.sequenceNr : undefined),
              () => undefined,
            )
          : undefined;
        if (json) line(out.stdout, toJson({ plan, repaired: true, result: done, snapshotAhead: ahead }));
        else {
          line(
            out.stdout,
            `cut: ${done.removed ? `${done.removed.first}..${done.removed.last}` : 'nothing'}` +
              (done.bytes !== undefined ? ` (${done.bytes} bytes)` : '') +
              `; kept through ${done.keptThrough}; the cut records are in ${done.quarantine}`,
          );
          if (ahead !== undefined) {
            line(
              out.stdout,
              `warning: "${id}" has a snapshot at sequenceNr ${ahead}, after the cut: delete snapshots above ${done.keptThrough} before the actor recovers (cairn snapshots delete ${id} --above ${done.keptThrough}), or it recovers state of events that were cut`,
            );
          }
        }
      });
    });

  program
    .command('compact')
    .description(
      'give the space of truncated and deleted events back to the disk now (file journal); stop the application first',
    )
    .action(async (_opts, cmd: Command) => {
      await withOpened(await openSelected(cmd, { readOnly: false }), (stores) =>
        compactJournal(stores, globals(cmd).json === true, out),
      );
    });

  const deleteSnapshotsCommand = async (
    id: string,
    above: number | undefined,
    json: boolean,
    cmd: Command,
  ): Promise<number> => {
    if (id.length === 0) throw new UsageError('the id must not be empty');
    if (above === undefined) {
      throw new UsageError(
        'snapshots delete changes data and needs an explicit --above <sequenceNr>: the snapshots past it are deleted',
      );
    }
    return withOpened(await openSelected(cmd, { readOnly: false }), async (stores) => {
      if (!stores.snapshots)
        throw new UsageError('snapshots delete needs a snapshot store (--snapshots or --config)');
      const doomed: number[] = [];
      await walkSnapshots(stores.snapshots, id, (e) => {
        if (e.sequenceNr > above) doomed.push(e.sequenceNr);
      });
      await stores.snapshots.delete(id, { minSequenceNr: above + 1 });
      // What is left above (none) is checked by reading back, so the message is what the store holds.
      const left = await stores.snapshots.loadLatest(id);
      if (left && left.sequenceNr > above) {
        throw new Error(`"${id}": a snapshot at ${left.sequenceNr} is still there after the delete`);
      }
      if (json)
        line(out.stdout, toJson({ persistenceId: id, above, deleted: doomed, newest: left?.sequenceNr }));
      else {
        line(
          out.stdout,
          doomed.length === 0
            ? `"${id}" has no snapshot that verifies above ${above} (any corrupt ones above it were deleted too)`
            : `deleted the snapshot(s) of "${id}" above ${above}: ${doomed.join(', ')} (and any corrupt ones there)`,
        );
        line(out.stdout, `newest snapshot now: ${left ? left.sequenceNr : 'none'}`);
      }
      return EXIT_OK;
    });
  };

  const acknowledgeCommand = async (id: string, json: boolean): Promise<number> => {
    if (id.length === 0) throw new UsageError('the id must not be empty');
    return withOpened(await openSelected(program, { readOnly: false }), async (stores) => {
      if (!stores.journal) throw new UsageError('repair needs a journal (--journal or --config)');
      if (!hasRepairHistory(stores.journal)) {
        throw new UnsupportedError(
          `the ${stores.journalConfig?.provider ?? 'configured'} journal keeps no repairs to acknowledge. Nothing was changed.`,
        );
      }
      const done = await stores.journal.acknowledgeRepairs(id);
      if (json) line(out.stdout, toJson({ persistenceId: id, acknowledged: done }));
      else if (done.length === 0) {
        line(out.stdout, `"${id}" has no repair waiting for acknowledgement: nothing changed`);
      } else {
        for (const r of done) line(out.stdout, `acknowledged: ${describeRepair(r)}`);
        line(
          out.stdout,
          `"${id}": its cut records are history now; verify and the application no longer report them`,
        );
      }
      return EXIT_OK;
    });
  };

  program
    .command('copy')
    .description(
      'copy journals and snapshots between backends or to/from a dump; resumable, verified afterwards',
    )
    .addOption(new Option('--from <config>', 'source cairn.config.json').conflicts('fromDump'))
    .option('--from-dump <file>', 'source dump (JSONL)')
    .addOption(new Option('--to <config>', 'target cairn.config.json').conflicts('toDump'))
    .option('--to-dump <file>', 'target dump (JSONL); an existing one is resumed')
    .option('--chunk <events>', 'events per appendBatch (default 500)', positive('--chunk'))
    .option(
      '--salvage',
      'copy everything that verifies out of a damaged store: each damaged id is cut back to its last good ' +
        'event and the readable events after the damage go to a quarantine dump',
    )
    .option(
      '--quarantine <file>',
      'with --salvage: the quarantine dump (default cairn-salvage-<time>.jsonl here)',
    )
    .action(async (opts: CopyCommandOptions, cmd: Command) => {
      const g = globals(cmd);
      if (g.config !== undefined || g.journal !== undefined || g.snapshots !== undefined) {
        throw new UsageError(
          'copy takes its stores from --from/--from-dump and --to/--to-dump, not --config/--journal/--snapshots',
        );
      }
      exitCode = await copyCommand(opts, g.json === true, out);
    });

  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return exitCode;
  } catch (e) {
    return reportError(e, out);
  }
}

/** Runs `body` with already opened stores and closes them afterwards, also when it throws. */
async function withOpened<T>(stores: OpenedStores, body: (stores: OpenedStores) => Promise<T>): Promise<T> {
  try {
    return await body(stores);
  } finally {
    await stores.close();
  }
}

/** Maps what went wrong to a message on stderr and an exit code. */
function reportError(e: unknown, out: CliOutput): number {
  if (e instanceof CommanderError) {
    // --help and --version exit 0; everything else commander rejects (including help shown because the
    // command was missing) is a usage error.
    return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  }
  const message = (e as Error)?.message ?? String(e);
  if (e instanceof UsageError || isPersistenceError(e, 'ERR_CONFIG')) {
    line(out.stderr, `cairn: ${message}`);
    return EXIT_USAGE;
  }
  if (e instanceof UnsupportedError) {
    line(out.stderr, `cairn: refused: ${message}`);
    return EXIT_UNSUPPORTED;
  }
  line(out.stderr, `cairn: ${message}`);
  return EXIT_PROBLEMS;
}
