import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MiB } from '../../electron/engine/chunking/params';
import { versionPair } from '../data';
import { round, type BenchContext, type Row, type ScenarioResult } from '../report';
import { onPath, run, tv, type Ran } from '../run';

/**
 * v1 pushed cold and v2 (1% rewritten in ten places, 100 bytes inserted near the start) pushed
 * warm into a local repository with `tv`; the same two steps with borg and restic where they are
 * installed, on the same files in the same run. Every tool runs as a process (startup included).
 */
export async function ingestLocal(ctx: BenchContext): Promise<ScenarioResult> {
  const size = (ctx.quick ? 256 : 1024) * MiB;
  const dir = await mkdtemp(join(tmpdir(), 'tv-bench-ingest-'));
  try {
    ctx.log(`ingest-local: generating ${size / MiB} MiB v1 and v2`);
    const { v1, v2 } = await versionPair(dir, size);
    const mbps = (s: number) => round(size / 1e6 / s, 0);
    const env = { TV_REPO: join(dir, 'tv-repo'), TV_REDIS_URL: '' };
    const cold = await tv(['push', 'model', v1, '--json'], env);
    const warm = await tv(['push', 'model', v2, '--json'], env);
    const warmResult = JSON.parse(warm.stdout) as { newBytes: number; chunks: number };
    const ours = {
      coldSeconds: round(cold.seconds),
      coldMbps: mbps(cold.seconds),
      warmSeconds: round(warm.seconds),
      warmMbps: mbps(warm.seconds),
      warmNewBytes: warmResult.newBytes,
    };
    const rows: Row[] = [
      {
        scenario: 'ingest-local',
        metric: 'tv cold push s',
        value: String(ours.coldSeconds),
        note: `${size / MiB} MiB, ${ours.coldMbps} MB/s`,
      },
      {
        scenario: 'ingest-local',
        metric: 'tv warm push s',
        value: String(ours.warmSeconds),
        note: `${ours.warmMbps} MB/s, new ${(ours.warmNewBytes / MiB).toFixed(1)} MiB`,
      },
    ];
    const json: Record<string, unknown> = { sizeMiB: size / MiB, ...ours };

    /** Another tool's two steps on the same files, as ratios of ours. */
    const compare = async (tool: string, steps: () => Promise<[Ran, Ran]>, targets: string) => {
      ctx.log(`ingest-local: ${tool}`);
      const [c, w] = await steps();
      const coldRatio = round(cold.seconds / c.seconds);
      const warmRatio = round(warm.seconds / w.seconds);
      json[tool] = {
        coldSeconds: round(c.seconds),
        warmSeconds: round(w.seconds),
        coldRatio,
        warmRatio,
      };
      rows.push(
        {
          scenario: 'ingest-local',
          metric: `${tool} cold / warm s`,
          value: `${round(c.seconds)} / ${round(w.seconds)}`,
        },
        {
          scenario: 'ingest-local',
          metric: `tv/${tool} cold, warm`,
          value: `${coldRatio}, ${warmRatio}`,
          note: targets,
        },
      );
    };
    if (onPath('borg')) {
      const repo = join(dir, 'borg-repo');
      const env = {
        BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
        BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
        BORG_BASE_DIR: join(dir, 'borg-home'),
      };
      await compare(
        'borg',
        async () => {
          await run('borg', ['init', '-e', 'none', repo], env);
          return [
            await run('borg', ['create', '--compression', 'none', `${repo}::v1`, v1], env),
            await run('borg', ['create', '--compression', 'none', `${repo}::v2`, v2], env),
          ];
        },
        'targets: cold <= 1.0, warm <= 0.5',
      );
    }
    if (onPath('restic')) {
      const env = {
        RESTIC_REPOSITORY: join(dir, 'restic-repo'),
        RESTIC_PASSWORD: 'bench',
        RESTIC_CACHE_DIR: join(dir, 'restic-cache'),
      };
      await compare(
        'restic',
        async () => {
          await run('restic', ['init'], env);
          return [
            await run('restic', ['backup', '--compression', 'off', '--quiet', v1], env),
            await run('restic', ['backup', '--compression', 'off', '--quiet', v2], env),
          ];
        },
        'for reference',
      );
    }
    return { json: { ingestLocal: json }, rows };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
