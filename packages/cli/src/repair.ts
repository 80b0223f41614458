import { canRepair, type MessageJournal, type RepairableJournal } from '@cairn/actor-core';
import { UnsupportedError } from './exit-codes';
import { checkJournalId, type Problem } from './verify';

/**
 * What `cairn repair --truncate-after-corruption` needs from a journal: the `repair` capability
 * (RepairableJournal in the SPI), which cuts one id back to its last good record, keeping the cut
 * records' bytes in a quarantine, and lowers highestSequenceNr to the last good sequenceNr.
 */
export type CorruptionRepairable = RepairableJournal;

/** What a repair of one id would cut, found by reading it: the first problem and everything after it. */
export interface RepairPlan {
  readonly persistenceId: string;
  readonly highestSequenceNr: number;
  /** The last sequenceNr that reads back good and in order. */
  readonly lastGood: number;
  /** The first problem found (corrupt record, gap); undefined when the id reads back clean. */
  readonly problem: Problem | undefined;
  /** The sequenceNrs that would be cut: lastGood + 1 .. highestSequenceNr. */
  readonly lost: { readonly first: number; readonly last: number } | undefined;
}

export async function planRepair(journal: MessageJournal, persistenceId: string): Promise<RepairPlan> {
  const check = await checkJournalId(journal, persistenceId);
  const problem = check.problems[0];
  // A gap is the first problem: keep what is in order below it.
  const lastGood =
    problem?.sequenceNr !== undefined
      ? problem.sequenceNr - 1
      : (check.lastSequenceNr ?? check.highestSequenceNr);
  return {
    persistenceId,
    highestSequenceNr: check.highestSequenceNr,
    lastGood,
    problem,
    lost: problem ? { first: lastGood + 1, last: check.highestSequenceNr } : undefined,
  };
}

/**
 * Cuts the id back to its last good record when the journal supports it, or throws UnsupportedError
 * naming what is missing; nothing is written in that case.
 */
export async function repairAfterCorruption(journal: MessageJournal, backend: string, plan: RepairPlan) {
  if (!canRepair(journal)) {
    throw new UnsupportedError(
      `the ${backend} journal offers no way to cut "${plan.persistenceId}" back to its last good record: ` +
        'it does not declare the `repair` capability (RepairableJournal: repairAfterCorruption moves the records ' +
        'from the first bad one into a quarantine and lowers highestSequenceNr to the last good one). Nothing was changed. ' +
        'To recover what verifies, stop the application and salvage into a fresh store: ' +
        'cairn copy --salvage --from <this config> --to <a new config>, which copies every id up to its last good event ' +
        '(damaged ids cut back there, their readable later events kept in a quarantine dump); then point the application at the new store.',
    );
  }
  return journal.repairAfterCorruption(plan.persistenceId);
}
