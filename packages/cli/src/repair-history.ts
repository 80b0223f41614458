import type { MessageJournal } from '@cairn/actor-core';

/** One repair a journal remembers (the file journal's `repairHistory` entries have this shape). */
export interface RepairRecord {
  readonly id: string;
  readonly first: number;
  readonly last: number;
  readonly quarantine: string;
  readonly at: number;
  readonly acknowledged?: number;
}

/** What `cairn repair --acknowledge` and verify's history need (the file journal has both). */
export interface RepairHistory {
  repairHistory(persistenceId?: string): RepairRecord[];
  acknowledgeRepairs(persistenceId: string): Promise<RepairRecord[]>;
}

export function hasRepairHistory(journal: MessageJournal): journal is MessageJournal & RepairHistory {
  const j = journal as Partial<RepairHistory>;
  return typeof j.repairHistory === 'function' && typeof j.acknowledgeRepairs === 'function';
}

/** "repair of "a" at <iso>: sequenceNr 14..30 cut, bytes in <file>; acknowledged <iso>" for notes. */
export function describeRepair(r: RepairRecord): string {
  return (
    `repair of "${r.id}" at ${new Date(r.at).toISOString()}: sequenceNr ${r.first}..${r.last} cut, ` +
    `the records kept in ${r.quarantine}` +
    (r.acknowledged === undefined
      ? `; not acknowledged yet (cairn repair --acknowledge ${r.id})`
      : `; acknowledged ${new Date(r.acknowledged).toISOString()}`)
  );
}
