import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MiB } from '../../electron/engine/chunking/params';
import { randomFile } from '../data';
import { round, type BenchContext, type ScenarioResult } from '../report';
import { tv } from '../run';

/** A large random file pushed by `tv`: peak RSS of that process, its worker threads included. */
export async function memory(ctx: BenchContext): Promise<ScenarioResult> {
  const size = (ctx.quick ? 1024 : 4096) * MiB;
  const dir = await mkdtemp(join(tmpdir(), 'tv-bench-memory-'));
  try {
    ctx.log(`memory: generating ${size / MiB} MiB`);
    await randomFile(join(dir, 'big.bin'), size);
    const pushed = await tv(['push', 'big', join(dir, 'big.bin'), '--json'], {
      TV_REPO: join(dir, 'repo'),
      TV_REDIS_URL: '',
    });
    const fileGb = round(size / 2 ** 30, 1);
    return {
      json: { memory: { fileGb, peakRssMb: pushed.peakRssMb, seconds: round(pushed.seconds) } },
      rows: [
        {
          scenario: 'memory',
          metric: 'peak RSS MB',
          value: String(pushed.peakRssMb),
          note: `${fileGb} GiB push in ${round(pushed.seconds)} s; target < 300`,
        },
      ],
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
