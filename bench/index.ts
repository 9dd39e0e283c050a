// `npm run bench [SCENARIO...] [--quick] [--json]`: every figure measured side by side in one run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { printTable, type BenchContext, type Row, type ScenarioResult } from './report';
import { chunker } from './scenarios/chunker';
import { compression } from './scenarios/compression';
import { dedupCheck } from './scenarios/dedup-check';
import { hash } from './scenarios/hash';
import { ingestLocal } from './scenarios/ingest-local';
import { memory } from './scenarios/memory';
import { packSize } from './scenarios/pack-size';
import { report } from './scenarios/report';
import { s3 } from './scenarios/s3';
import { team } from './scenarios/team';

process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
// The user's cache folder (the local copy of an S3 repository's index, the files cache) is the
// run's own, for this process and every `tv` it starts: runs start alike, and nothing stays behind.
const cacheHome = mkdtempSync(join(tmpdir(), 'tv-bench-cache-'));
process.env['XDG_CACHE_HOME'] = cacheHome;

const SCENARIOS: Record<string, (ctx: BenchContext) => Promise<ScenarioResult>> = {
  chunker,
  hash,
  'dedup-check': dedupCheck,
  'ingest-local': ingestLocal,
  s3,
  restore: s3,
  memory,
  report,
  'pack-size': packSize,
  team,
  compression,
};
/** Scenarios run only when named (long, and for choosing a default rather than checking one). */
const ON_REQUEST = ['pack-size', 'compression'];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const unknown = positionals.filter((name) => !(name in SCENARIOS));
if (unknown.length > 0) {
  console.error(
    `bench: unknown scenario ${unknown.join(', ')} (known: ${Object.keys(SCENARIOS).join(', ')})`,
  );
  process.exit(2);
}
// `restore` is measured by the s3 scenario (it needs the same repositories): run that once.
const selected = [
  ...new Set(
    (positionals.length > 0
      ? positionals
      : Object.keys(SCENARIOS).filter((n) => !ON_REQUEST.includes(n))
    ).map((n) => (n === 'restore' ? 's3' : n)),
  ),
];
const ctx: BenchContext = { quick: values.quick ?? false, log: (m) => console.error(m) };
const json: Record<string, unknown> = { date: new Date().toISOString(), quick: ctx.quick };
const rows: Row[] = [];
for (const name of selected) {
  const result = await SCENARIOS[name]!(ctx);
  Object.assign(json, result.json);
  rows.push(...result.rows);
}
rmSync(cacheHome, { recursive: true, force: true });
if (values.json) process.stdout.write(JSON.stringify(json) + '\n');
else printTable(rows);
process.exit(0);
