import type { CliOutput } from './terminal-output';

const REDRAW_EVERY_MS = 100;
const BAR_WIDTH = 30;

/**
 * A one-line progress bar on stderr, drawn only when stderr is a terminal (never into a pipe or a log
 * file, where it would be noise). Redrawn at most every 100 ms, checked on each tick rather than by a
 * timer, so nothing keeps the process alive or outlives the command.
 */
export class ProgressBar {
  private done = 0;
  private drawnAt = 0;
  private readonly enabled: boolean;

  constructor(
    private readonly out: CliOutput['stderr'],
    private readonly label: string,
    private readonly total: number,
  ) {
    this.enabled = out.isTTY === true && total > 0;
  }

  tick(n = 1): void {
    this.done += n;
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.drawnAt < REDRAW_EVERY_MS && this.done < this.total) return;
    this.drawnAt = now;
    const ratio = Math.min(1, this.done / this.total);
    const filled = Math.round(ratio * BAR_WIDTH);
    this.out.write(
      `\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${this.done}/${this.total}`,
    );
  }

  /** Clears the bar so that what follows starts on a clean line. */
  finish(): void {
    if (this.enabled && this.drawnAt > 0) this.out.write('\r\x1b[K');
  }
}
