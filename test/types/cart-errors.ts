/**
 * Mistakes the types must catch. Each `// error "text":` comment marks a mistake: tsc must report an
 * error containing "text" within the three lines after the comment, and nothing anywhere else
 * (test/types.test.ts checks both).
 */
import { ActorSystem, Effect, EventSourcedBehavior } from '@cairn/actor-core';

type Cmd = { type: 'add'; item: string } | { type: 'items' };
type Evt = { type: 'added'; item: string };
interface Cart {
  readonly items: readonly string[];
}

export const wrongEvent = EventSourcedBehavior.create<Cmd, Evt, Cart, number>({
  persistenceId: 'cart',
  emptyState: { items: [] },
  commandHandler: (cart, cmd) =>
    // error "addded": an event the behavior does not know
    cmd.type === 'add' ? Effect.persist({ type: 'addded', item: cmd.item }) : Effect.reply(cart.items.length),
  eventHandler: (cart, evt) => ({ items: [...cart.items, evt.item] }),
});

export const wrongReply = EventSourcedBehavior.create<Cmd, Evt, Cart, number>({
  persistenceId: 'cart',
  emptyState: { items: [] },
  commandHandler: (cart, cmd) =>
    // error "'readonly string[]' is not assignable to type 'number'": the reply must be a number
    cmd.type === 'add'
      ? Effect.persist({ type: 'added', item: cmd.item }).thenReply((s) => s.items)
      : Effect.reply(cart.items.length),
  eventHandler: (cart, evt) => ({ items: [...cart.items, evt.item] }),
});

export const wrongState = EventSourcedBehavior.create<Cmd, Evt, Cart, number>({
  persistenceId: 'cart',
  emptyState: { items: [] },
  commandHandler: (cart, cmd) =>
    cmd.type === 'add'
      ? // error "Property 'count' does not exist on type 'Cart'": the state is typed in thenReply
        Effect.persist({ type: 'added', item: cmd.item }).thenReply((s) => s.count)
      : Effect.reply(cart.items.length),
  eventHandler: (cart, evt) => ({ items: [...cart.items, evt.item] }),
});

export const wrongTypedReply = EventSourcedBehavior.create<Cmd, Evt, Cart, number>({
  persistenceId: 'cart',
  emptyState: { items: [] },
  commandHandler: (cart, _cmd, effect) =>
    // error "not assignable to parameter of type 'number'": the typed factories check the reply
    effect.reply(cart.items),
  eventHandler: (cart, evt) => ({ items: [...cart.items, evt.item] }),
});

export async function asks(): Promise<void> {
  const system = await ActorSystem.create({
    persistence: { journal: { provider: 'memory' }, snapshots: { provider: 'memory' } },
  });
  const typed = await system.spawn(wrongEvent);
  // error "Type 'number' is not assignable to type 'string'": the reply is a number
  const s: string = await typed.ask({ type: 'items' });
  const untyped = await system.spawn(
    EventSourcedBehavior.create<string, string, number>({
      persistenceId: 'untyped',
      emptyState: 0,
      commandHandler: (n) => Effect.reply(n),
      eventHandler: (n) => n,
    }),
  );
  // error "Type 'unknown' is not assignable to type 'number'": no reply type declared, never guessed
  const n: number = await untyped.ask('x');
  // error "does not satisfy the constraint 'number'": ask's type argument only narrows the reply type
  const t = await typed.ask<string>({ type: 'items' });
  console.log(s, n, t);
  await system.terminate();
}
