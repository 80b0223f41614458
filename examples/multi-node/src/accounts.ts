import { EventSourcedBehavior } from '@cairn/actor-core';

/** A deposit to an account; its balance is the sum of its deposits. */
export interface Deposited {
  readonly amount: number;
}

/** An account entity: a number deposits that amount and replies with the new balance. */
export const account = (id: string) =>
  EventSourcedBehavior.create<number, Deposited, number, number>({
    persistenceId: `account-${id}`,
    emptyState: 0,
    commandHandler: (_balance, amount, effect) => effect.persist({ amount }).thenReply((balance) => balance),
    eventHandler: (balance, event) => balance + event.amount,
    snapshotEvery: 10,
  });

/** The accounts of the run: the two nodes serve the even and the odd ones. */
export const ACCOUNTS = Array.from({ length: 16 }, (_, i) => `acct-${String(i).padStart(2, '0')}`);
/** An account both nodes deposit to, to show two processes serving one entity. */
export const SHARED_ACCOUNT = 'acct-shared';
/** Deposits per account from its node; and per node to the shared account. */
export const DEPOSITS_PER_ACCOUNT = 25;
export const SHARED_DEPOSITS_PER_NODE = 15;

/** The accounts node `index` (0 or 1) of `nodes` serves: spread by id. */
export function accountsOf(index: number, nodes: number): string[] {
  return ACCOUNTS.filter((_, i) => i % nodes === index);
}

/** The amount of the k-th deposit to an account (deterministic, so a run can be checked). */
export function amountOf(k: number): number {
  return (k % 7) + 1;
}
