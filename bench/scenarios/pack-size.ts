import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MiB } from '../../electron/engine/chunking/params';
import type { Service } from '../../electron/engine/service';
import { versionPair } from '../data';
import { round, type BenchContext, type Row, type ScenarioResult } from '../report';
import { settle } from '../run';
import { RedisServer, S3Child, s3Repository, s3Service } from '../s3-fixture';

const LATENCY_MS = 30;
const SIZES_MIB = [16, 32, 64];

/** Rounds, the sizes taking turns in each: the machine's speed drifts between them. */
const ROUNDS = 2;

/**
 * The same v1/v2 pushed to S3 at 30 ms per request, and v2 restored, with packs of 16, 32 and
 * 64 MiB, taking turns in rounds, each step's best round: what the default pack size is chosen
 * from.
 */
export async function packSize(ctx: BenchContext): Promise<ScenarioResult> {
  const size = (ctx.quick ? 128 : 1024) * MiB;
  const dir = await mkdtemp(join(tmpdir(), 'tv-bench-packsize-'));
  const [server, redis] = await Promise.all([S3Child.start(), RedisServer.start()]);
  const services: Service[] = [];
  try {
    ctx.log(`pack-size: generating ${size / MiB} MiB v1 and v2`);
    const pair = await versionPair(dir, size);
    await server.command(`latency ${LATENCY_MS}`);
    const timed = async (fn: () => Promise<unknown>) => {
      settle();
      const started = performance.now();
      await fn();
      return (performance.now() - started) / 1000;
    };
    const mbps = (s: number) => round(size / 1e6 / s, 0);
    const best = new Map<number, { cold: number; warm: number; restore: number }>();
    for (let turn = 1; turn <= ROUNDS; turn++) {
      for (const mib of SIZES_MIB) {
        ctx.log(`pack-size: round ${turn} of ${ROUNDS}, ${mib} MiB packs`);
        const prefix = `packs-${mib}-${turn}`;
        await s3Repository(server, prefix, { packSize: mib * MiB });
        const team = s3Service(server, prefix, redis.url);
        services.push(team);
        const cold = await timed(() => team.push({ model: 'm', paths: [pair.v1] }));
        const warm = await timed(() => team.push({ model: 'm', paths: [pair.v2] }));
        const restore = await timed(() => team.pull('m@v2', join(dir, `restore-${prefix}`)));
        const was = best.get(mib) ?? { cold: Infinity, warm: Infinity, restore: Infinity };
        best.set(mib, {
          cold: Math.min(was.cold, cold),
          warm: Math.min(was.warm, warm),
          restore: Math.min(was.restore, restore),
        });
      }
    }
    const results: Record<string, unknown> = {};
    const rows: Row[] = [];
    for (const [mib, b] of best) {
      results[`${mib}MiB`] = {
        coldMbps: mbps(b.cold),
        warmSeconds: round(b.warm),
        restoreMbps: mbps(b.restore),
      };
      rows.push({
        scenario: 'pack-size',
        metric: `${mib} MiB packs`,
        value: `${mbps(b.cold)} MB/s`,
        note: `cold push; warm push ${round(b.warm)} s; restore ${mbps(b.restore)} MB/s (at ${LATENCY_MS} ms, best of ${ROUNDS})`,
      });
    }
    return { json: { packSize: { latencyMs: LATENCY_MS, sizeMiB: size / MiB, ...results } }, rows };
  } finally {
    for (const s of services) await s.close().catch(() => {});
    await server.stop();
    await redis.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}
