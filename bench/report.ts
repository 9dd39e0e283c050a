/** What a scenario returns: its JSON part (merged into the one object) and rows for the table. */
export interface ScenarioResult {
  json: Record<string, unknown>;
  rows: Row[];
}

export interface Row {
  scenario: string;
  metric: string;
  value: string;
  note?: string;
}

export interface BenchContext {
  quick: boolean;
  /** Progress lines for the reader; go to stderr so --json output stays one object. */
  log(message: string): void;
}

export const round = (n: number, digits = 2) => Number(n.toFixed(digits));

/** The best (highest) throughput of several rounds, in MB/s (10^6 bytes per second). */
export async function bestMbps(bytes: number, rounds: number, run: () => unknown): Promise<number> {
  let best = 0;
  for (let r = 0; r < rounds; r++) {
    const started = performance.now();
    await run();
    const seconds = (performance.now() - started) / 1000;
    best = Math.max(best, bytes / 1e6 / seconds);
  }
  return best;
}

export function printTable(rows: Row[]): void {
  const widths = [8, 6, 5].map((min, i) =>
    Math.max(min, ...rows.map((r) => [r.scenario, r.metric, r.value][i]!.length)),
  );
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c)).join('  ');
  console.log(line(['scenario', 'metric', 'value', 'note']));
  console.log(line(widths.map((w) => '-'.repeat(w)).concat('----')));
  for (const r of rows) console.log(line([r.scenario, r.metric, r.value, r.note ?? '']));
}
