/** Small helpers every workload uses to size its data and check what it read back. */

/** `base` multiplied by the run's scale, rounded, at least `min`. */
export function scaled(base: number, scale: number, min: number): number {
  return Math.max(min, Math.round(base * scale));
}

/** Fails the cell (a system that loses or garbles data posts no figure). */
export function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`verification failed: ${message}`);
}

/** Sum of amounts 1..n, what a replay of n events of one id must add up to. */
export function triangle(n: number): number {
  return (n * (n + 1)) / 2;
}
