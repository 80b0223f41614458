import type { OffsetStore } from './read-side';

/**
 * The projections running in this process, per offset store and name. Kept on globalThis under a
 * registered symbol so two copies of this package in one process still see each other.
 */
const KEY = Symbol.for('cairn.projection.running');

type Running = WeakMap<OffsetStore, Set<string>>;

function running(): Running {
  const holder = globalThis as unknown as Record<symbol, Running | undefined>;
  let map = holder[KEY];
  if (!map) {
    map = new WeakMap();
    holder[KEY] = map;
  }
  return map;
}

/** Claims `name` on `offsets` for this process; false when a projection of that name already runs there. */
export function claimName(offsets: OffsetStore, name: string): boolean {
  const map = running();
  let names = map.get(offsets);
  if (!names) {
    names = new Set();
    map.set(offsets, names);
  }
  if (names.has(name)) return false;
  names.add(name);
  return true;
}

export function releaseName(offsets: OffsetStore, name: string): void {
  running().get(offsets)?.delete(name);
}
