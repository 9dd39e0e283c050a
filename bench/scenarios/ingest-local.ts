import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MiB } from '../../electron/engine/chunking/params';
import { versionPair } from '../data';
import { round, type BenchContext, type Row, type ScenarioResult } from '../report';
import { onPath, run, tv, type Ran } from '../run';

/**
 * Rounds of every tool's two steps (three: one tool's rounds differ by up to 2.5x in one run
 * here); each step's best round is reported.
 */
const ROUNDS = 3;

interface Tool {
  name: string;
  /** Pushes v1 into a fresh repository (cold), then v2 (warm); the results of each step. */
  steps(repo: string): Promise<[Ran, Ran]>;
}

/**
 * v1 pushed cold and v2 (1% rewritten in ten places, 100 bytes inserted near the start) pushed
 * warm into a local repository with `tv`; the same two steps with borg and restic where they are
 * installed, on the same files in the same run. Every tool runs as a process (startup included).
 *
 * The tools take turns, in rounds, each round starting with the next tool, and each step's best
 * round counts: the disk of these machines is shared and still busy for a while after big writes
 * (the first step after the data is generated pays for that, whichever tool it is).
 */
export async function ingestLocal(ctx: BenchContext): Promise<ScenarioResult> {
  const size = (ctx.quick ? 256 : 1024) * MiB;
  const dir = await mkdtemp(join(tmpdir(), 'tv-bench-ingest-'));
  try {
    ctx.log(`ingest-local: generating ${size / MiB} MiB v1 and v2`);
    const { v1, v2 } = await versionPair(dir, size);
    const mbps = (s: number) => round(size / 1e6 / s, 0);
    let warmNewBytes = 0;

    const tools: Tool[] = [
      {
        name: 'tv',
        steps: async (repo) => {
          const env = { TV_REPO: repo, TV_REDIS_URL: '' };
          const cold = await tv(['push', 'model', v1, '--json'], env);
          const warm = await tv(['push', 'model', v2, '--json'], env);
          warmNewBytes = (JSON.parse(warm.stdout) as { newBytes: number }).newBytes;
          return [cold, warm];
        },
      },
    ];
    if (onPath('borg')) {
      tools.push({
        name: 'borg',
        steps: async (repo) => {
          const env = {
            BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
            BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
            BORG_BASE_DIR: join(dir, 'borg-home'),
          };
          await run('borg', ['init', '-e', 'none', repo], env);
          return [
            await run('borg', ['create', '--compression', 'none', `${repo}::v1`, v1], env),
            await run('borg', ['create', '--compression', 'none', `${repo}::v2`, v2], env),
          ];
        },
      });
    }
    if (onPath('restic')) {
      tools.push({
        name: 'restic',
        steps: async (repo) => {
          const env = {
            RESTIC_REPOSITORY: repo,
            RESTIC_PASSWORD: 'bench',
            RESTIC_CACHE_DIR: join(dir, 'restic-cache'),
          };
          await run('restic', ['init'], env);
          return [
            await run('restic', ['backup', '--compression', 'off', '--quiet', v1], env),
            await run('restic', ['backup', '--compression', 'off', '--quiet', v2], env),
          ];
        },
      });
    }

    const times = new Map(
      tools.map((t) => [t.name, { cold: [] as number[], warm: [] as number[] }]),
    );
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < tools.length; k++) {
        const tool = tools[(r + k) % tools.length] as Tool;
        ctx.log(`ingest-local: round ${r + 1} of ${ROUNDS}, ${tool.name}`);
        const repo = join(dir, `${tool.name}-repo`);
        const [cold, warm] = await tool.steps(repo);
        const t = times.get(tool.name)!;
        t.cold.push(round(cold.seconds));
        t.warm.push(round(warm.seconds));
        await rm(repo, { recursive: true, force: true });
      }
    }
    const best = (name: string) => {
      const t = times.get(name)!;
      return { cold: Math.min(...t.cold), warm: Math.min(...t.warm), runs: t };
    };

    const ours = best('tv');
    const json: Record<string, unknown> = {
      sizeMiB: size / MiB,
      coldSeconds: ours.cold,
      coldMbps: mbps(ours.cold),
      warmSeconds: ours.warm,
      warmMbps: mbps(ours.warm),
      warmNewBytes,
      runs: ours.runs,
    };
    const rows: Row[] = [
      {
        scenario: 'ingest-local',
        metric: 'tv cold push s',
        value: String(ours.cold),
        note: `${size / MiB} MiB, ${mbps(ours.cold)} MB/s; rounds ${ours.runs.cold.join(', ')}`,
      },
      {
        scenario: 'ingest-local',
        metric: 'tv warm push s',
        value: String(ours.warm),
        note: `${mbps(ours.warm)} MB/s, new ${(warmNewBytes / MiB).toFixed(1)} MiB; rounds ${ours.runs.warm.join(', ')}`,
      },
    ];
    for (const tool of tools.slice(1)) {
      const theirs = best(tool.name);
      const coldRatio = round(ours.cold / theirs.cold);
      const warmRatio = round(ours.warm / theirs.warm);
      json[tool.name] = {
        coldSeconds: theirs.cold,
        warmSeconds: theirs.warm,
        coldRatio,
        warmRatio,
        runs: theirs.runs,
      };
      rows.push(
        {
          scenario: 'ingest-local',
          metric: `${tool.name} cold / warm s`,
          value: `${theirs.cold} / ${theirs.warm}`,
          note: `rounds ${theirs.runs.cold.join(', ')} / ${theirs.runs.warm.join(', ')}`,
        },
        {
          scenario: 'ingest-local',
          metric: `tv/${tool.name} cold, warm`,
          value: `${coldRatio}, ${warmRatio}`,
          note: tool.name === 'borg' ? 'targets: cold <= 1.0, warm <= 0.5' : 'for reference',
        },
      );
    }
    return { json: { ingestLocal: json }, rows };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
