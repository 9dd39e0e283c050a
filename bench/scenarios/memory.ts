import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MiB } from '../../electron/engine/chunking/params';
import { randomFile } from '../data';
import { round, type BenchContext, type ScenarioResult } from '../report';
import { tv } from '../run';
import { S3Child, s3Env, s3Repository } from '../s3-fixture';

/**
 * A large random file pushed by `tv` to a folder and to S3 (packs held in memory until
 * uploaded: packs in flight times the pack size): peak RSS of that process, worker threads
 * included.
 */
export async function memory(ctx: BenchContext): Promise<ScenarioResult> {
  const size = (ctx.quick ? 1024 : 4096) * MiB;
  const dir = await mkdtemp(join(tmpdir(), 'tv-bench-memory-'));
  const server = await S3Child.start();
  try {
    ctx.log(`memory: generating ${size / MiB} MiB`);
    await randomFile(join(dir, 'big.bin'), size);
    ctx.log('memory: push to a folder');
    const local = await tv(['push', 'big', join(dir, 'big.bin'), '--json'], {
      TV_REPO: join(dir, 'repo'),
      TV_REDIS_URL: '',
    });
    ctx.log('memory: push to S3');
    await s3Repository(server, 'memory');
    const remote = await tv(['push', 'big', join(dir, 'big.bin'), '--json'], {
      ...s3Env(server),
      TV_REPO: `s3://${server.bucket}/memory`,
      TV_REDIS_URL: '',
    });
    const fileGb = round(size / 2 ** 30, 1);
    return {
      json: {
        memory: {
          fileGb,
          peakRssMb: local.peakRssMb,
          seconds: round(local.seconds),
          s3PeakRssMb: remote.peakRssMb,
          s3Seconds: round(remote.seconds),
        },
      },
      rows: [
        {
          scenario: 'memory',
          metric: 'peak RSS MB',
          value: String(local.peakRssMb),
          note: `${fileGb} GiB push to a folder in ${round(local.seconds)} s; target < 300`,
        },
        {
          scenario: 'memory',
          metric: 'peak RSS MB, to S3',
          value: String(remote.peakRssMb),
          note: `${fileGb} GiB push to S3 (no added latency) in ${round(remote.seconds)} s; target < 300`,
        },
      ],
    };
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
