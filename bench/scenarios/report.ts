import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeManifest } from '../../electron/engine/repository/format';
import { Service } from '../../electron/engine/service';
import { objectKey } from '../../electron/engine/storage/store';
import { round, type BenchContext, type ScenarioResult } from '../report';

/** The dedup report of a 10 GB version (160,000 chunks) with its parent, from manifests only. */
export async function report(ctx: BenchContext): Promise<ScenarioResult> {
  const dir = await mkdtemp(join(tmpdir(), 'tv-bench-report-'));
  const service = new Service({ repository: join(dir, 'repo'), redisUrl: undefined, mode: 'cli' });
  try {
    const repo = await service.repository(true);
    const n = 160_000;
    const size = 65_536;
    const v1 = Array.from({ length: n }, () => ({
      hash: randomBytes(32).toString('hex'),
      length: size,
    }));
    const v2 = v1.map((c, i) =>
      i % 997 < 40 ? { hash: randomBytes(32).toString('hex'), length: size } : c,
    );
    const stats = {
      logicalBytes: n * size,
      newBytes: 0,
      reusedBytes: 0,
      reusedFromParentBytes: 0,
      chunks: n,
      newChunks: 0,
      metadataBytes: 0,
      seconds: 1,
    };
    let parent: string | null = null;
    for (const chunks of [v1, v2]) {
      const bytes = encodeManifest({ size: n * size, fileHash: '0'.repeat(64), chunks }, 'sha256');
      const m = repo.hash(bytes);
      await repo.store.put(objectKey(m), bytes);
      const entry = await repo.publish({
        format: 1,
        kind: 'version',
        model: 'ten-gb',
        parent,
        createdAt: new Date().toISOString(),
        author: 'bench',
        message: '',
        files: [{ path: 'weights.bin', size: n * size, manifest: m }],
        stats,
      });
      parent = entry.id;
    }
    ctx.log('report: 10 GB version, 160,000 chunks');
    let best = Infinity;
    let runs = 0;
    for (let r = 0; r < 3; r++) {
      const started = performance.now();
      const result = await service.report('ten-gb@v2');
      best = Math.min(best, performance.now() - started);
      runs = result.files[0]!.runs.length;
    }
    return {
      json: { report: { chunks: n, gb: round((n * size) / 1e9, 1), runs, ms: round(best, 0) } },
      rows: [
        {
          scenario: 'report',
          metric: '10 GB report ms',
          value: String(round(best, 0)),
          note: `${n} chunks, ${runs} runs; target well under 1000`,
        },
      ],
    };
  } finally {
    await service.close();
    await rm(dir, { recursive: true, force: true });
  }
}
