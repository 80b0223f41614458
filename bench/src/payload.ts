/**
 * The data every system stores, identical across systems so that figures compare (the workload table: "the same
 * payload everywhere", about 150 bytes serialized).
 */

/** The event every workload appends. */
export interface DepositEvent {
  readonly type: 'Deposited';
  readonly amount: number;
  readonly account: string;
  readonly note: string;
}

/** 100 ASCII characters, as the workload table prescribes; fixed so every system stores the same bytes. */
export const NOTE =
  'Monthly transfer from savings to checking, reference 7f3a9c21, approved at branch 0042, no fees due.';

if (NOTE.length !== 100) {
  throw new Error(`NOTE must be 100 characters, is ${NOTE.length}`);
}

/** The i-th event of account n. */
export function depositEvent(i: number, account: number): DepositEvent {
  return { type: 'Deposited', amount: i, account: `acct-${account}`, note: NOTE };
}

/** Events i = from .. from + count - 1 of one account. */
export function depositEvents(from: number, count: number, account: number): DepositEvent[] {
  const events: DepositEvent[] = new Array(count);
  for (let k = 0; k < count; k++) {
    events[k] = depositEvent(from + k, account);
  }
  return events;
}

/** The state a W5 snapshot holds: about 10 KB once serialized (checked by the W5 workload). */
export interface AccountSnapshot {
  readonly account: string;
  readonly balance: number;
  readonly history: readonly { readonly amount: number; readonly at: number; readonly note: string }[];
}

/** Entries in a W5 snapshot's history; 76 of ~135 bytes each come to about 10 KB in JSON or msgpack. */
const HISTORY_ENTRIES = 76;

export function accountSnapshot(account: number): AccountSnapshot {
  const history = [];
  let balance = 0;
  for (let k = 0; k < HISTORY_ENTRIES; k++) {
    balance += k;
    history.push({ amount: k, at: 1_700_000_000_000 + k * 1000, note: NOTE });
  }
  return { account: `acct-${account}`, balance, history };
}

/** The state W4 recovers (and, for Cairn, snapshots at sequenceNr 10): small, as most actors' state is. */
export interface BalanceState {
  readonly balance: number;
  readonly events: number;
}

export const EMPTY_BALANCE: BalanceState = { balance: 0, events: 0 };

export function applyDeposit(state: BalanceState, event: DepositEvent): BalanceState {
  return { balance: state.balance + event.amount, events: state.events + 1 };
}
