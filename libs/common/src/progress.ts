/**
 * Progress of a long operation as log lines: `report(fields)` logs `message` with the fields at
 * most once per interval (default 2 s), and not at all before the first interval has passed, so
 * a quick operation logs nothing extra.
 */
export class ProgressLog {
  private last: number;

  constructor(
    private readonly log: { info(obj: object, msg: string): void },
    private readonly message: string,
    private readonly intervalMs = 2000,
    private readonly now: () => number = Date.now,
  ) {
    this.last = now();
  }

  /** Logs the fields if an interval has passed since the start or the last line. Cheap otherwise. */
  report(fields: () => Record<string, unknown>): void {
    const t = this.now();
    if (t - this.last < this.intervalMs) return;
    this.last = t;
    this.log.info(fields(), this.message);
  }
}
