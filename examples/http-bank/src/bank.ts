import { Effect, EventSourcedBehavior } from '@cairn/actor-core';

export type AccountCommand = { type: 'deposit'; amount: number } | { type: 'balance' };
export type AccountEvent = { type: 'deposited'; amount: number };
/** What every command replies: the balance after it. */
export type Balance = number;

/** The entity kind the server registers. */
export const ACCOUNT = 'account';

/** Account `id` as an event-sourced actor; its state is the balance, in cents. */
export function account(id: string): EventSourcedBehavior<AccountCommand, AccountEvent, Balance, Balance> {
  return EventSourcedBehavior.create<AccountCommand, AccountEvent, Balance, Balance>({
    persistenceId: `account-${id}`,
    emptyState: 0,
    commandHandler: (balance, cmd) =>
      cmd.type === 'deposit'
        ? Effect.persist({ type: 'deposited', amount: cmd.amount }).thenReply((b) => b)
        : Effect.reply(balance),
    eventHandler: (balance, evt) => balance + evt.amount,
    // A snapshot every 50 events keeps recovery after a passivation short for busy accounts.
    snapshotEvery: 50,
    keepSnapshots: 2,
  });
}
