import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MiB } from '../../electron/engine/chunking/params';
import { modelFolder, rewriteInPlace, versionPair } from '../data';
import { round, type BenchContext, type Row, type ScenarioResult } from '../report';
import { onPath, run, tv, type Ran } from '../run';

/**
 * Rounds of every tool's steps (three: one tool's rounds differ by up to 2.5x in one run here);
 * each step's best round is reported.
 */
const ROUNDS = 3;

/** A tool's steps in one round, each into a repository of its own made for the round. */
interface Tool {
  name: string;
  /** v1 pushed cold, v2 warm, then v2 again unchanged (the files cache's case). */
  versions(repo: string): Promise<Ran[]>;
  /** A folder of many files pushed cold, one file rewritten, the folder pushed again. */
  folder(repo: string, changeOne: () => Promise<void>): Promise<Ran[]>;
}

const VERSION_STEPS = ['cold', 'warm', 'unchanged'] as const;
const FOLDER_STEPS = ['folder cold', 'folder one changed'] as const;

/**
 * Two data sets, pushed by `tv` into a local repository and, in the same run on the same files,
 * by borg and restic where they are installed (every tool as a process, start-up included):
 * - a 1 GiB v1 (cold), a v2 (1% rewritten in ten places, 100 bytes inserted near the start;
 *   warm), then v2 again unchanged (`tv` skips files its files cache vouches for; borg too);
 * - a folder of 16 files of 256 MiB pushed, one file then rewritten in places (1%), and pushed
 *   again (borg only, as the target names).
 *
 * The tools take turns, in rounds, each round starting with the next tool, and each step's best
 * round counts: the disk of these machines is shared and still busy for a while after big writes
 * (the first step after the data is generated pays for that, whichever tool it is).
 */
export async function ingestLocal(ctx: BenchContext): Promise<ScenarioResult> {
  const size = (ctx.quick ? 256 : 1024) * MiB;
  const fileSize = (ctx.quick ? 16 : 256) * MiB;
  const dir = await mkdtemp(join(tmpdir(), 'tv-bench-ingest-'));
  try {
    ctx.log(`ingest-local: generating ${size / MiB} MiB v1 and v2, 16 x ${fileSize / MiB} MiB`);
    const { v1, v2 } = await versionPair(dir, size);
    const folder = await modelFolder(join(dir, 'folder'), 16, fileSize);
    const changeOne = () => rewriteInPlace(join(folder, 'model-00007-of-00016.bin'));
    // The files cache trusts no record made in the second its file last changed.
    await sleep(1100);
    const tools = toolsFor(dir, v1, v2, folder);
    const times = new Map(tools.map((t) => [t.name, new Map<string, number[]>()]));
    let warmNewBytes = 0;
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < tools.length; k++) {
        const tool = tools[(r + k) % tools.length] as Tool;
        ctx.log(`ingest-local: round ${r + 1} of ${ROUNDS}, ${tool.name}`);
        const repo = join(dir, `${tool.name}-repo`);
        const steps = await tool.versions(repo);
        if (tool.name === 'tv')
          warmNewBytes = (JSON.parse((steps[1] as Ran).stdout) as { newBytes: number }).newBytes;
        await rm(repo, { recursive: true, force: true });
        const folderSteps = tool.name === 'restic' ? [] : await tool.folder(repo, changeOne);
        await rm(repo, { recursive: true, force: true });
        const t = times.get(tool.name)!;
        [...VERSION_STEPS, ...FOLDER_STEPS].forEach((step, i) => {
          const ran = [...steps, ...folderSteps][i];
          if (ran) t.set(step, [...(t.get(step) ?? []), round(ran.seconds)]);
        });
      }
    }
    return report(times, { size, fileSize, warmNewBytes });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function toolsFor(dir: string, v1: string, v2: string, folder: string): Tool[] {
  const tvEnv = (repo: string) => ({
    TV_REPO: repo,
    TV_REDIS_URL: '',
    XDG_CACHE_HOME: join(dir, 'tv-cache'),
  });
  const tools: Tool[] = [
    {
      name: 'tv',
      versions: async (repo) => [
        await tv(['push', 'model', v1, '--json'], tvEnv(repo)),
        await tv(['push', 'model', v2, '--json'], tvEnv(repo)),
        // A version like borg's archive (without --allow-same an identical push writes none).
        await tv(['push', 'model', v2, '--json', '--allow-same'], tvEnv(repo)),
      ],
      folder: async (repo, changeOne) => {
        const cold = await tv(['push', 'folder', folder, '--json'], tvEnv(repo));
        await changeOne();
        return [cold, await tv(['push', 'folder', folder, '--json'], tvEnv(repo))];
      },
    },
  ];
  if (onPath('borg')) {
    const env = {
      BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
      BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
      BORG_BASE_DIR: join(dir, 'borg-home'),
    };
    const create = (repo: string, name: string, path: string) =>
      run('borg', ['create', '--compression', 'none', `${repo}::${name}`, path], env);
    tools.push({
      name: 'borg',
      versions: async (repo) => {
        await run('borg', ['init', '-e', 'none', repo], env);
        return [
          await create(repo, 'v1', v1),
          await create(repo, 'v2', v2),
          await create(repo, 'v2b', v2),
        ];
      },
      folder: async (repo, changeOne) => {
        await run('borg', ['init', '-e', 'none', repo], env);
        const cold = await create(repo, 'a', folder);
        await changeOne();
        return [cold, await create(repo, 'b', folder)];
      },
    });
  }
  if (onPath('restic')) {
    tools.push({
      name: 'restic',
      versions: async (repo) => {
        const env = {
          RESTIC_REPOSITORY: repo,
          RESTIC_PASSWORD: 'bench',
          RESTIC_CACHE_DIR: join(dir, 'restic-cache'),
        };
        const backup = (path: string) =>
          run('restic', ['backup', '--compression', 'off', '--quiet', path], env);
        await run('restic', ['init'], env);
        return [await backup(v1), await backup(v2), await backup(v2)];
      },
      folder: async () => [],
    });
  }
  return tools;
}

/** The rows: tv's best rounds, each other tool's, and the ratios the targets name. */
function report(
  times: Map<string, Map<string, number[]>>,
  data: { size: number; fileSize: number; warmNewBytes: number },
): ScenarioResult {
  const best = (tool: string, step: string) => Math.min(...(times.get(tool)?.get(step) ?? [NaN]));
  const rounds = (tool: string, step: string) => (times.get(tool)?.get(step) ?? []).join(', ');
  const mbps = (s: number) => round(data.size / 1e6 / s, 0);
  const json: Record<string, unknown> = {
    sizeMiB: data.size / MiB,
    folder: { files: 16, fileMiB: data.fileSize / MiB },
    warmNewBytes: data.warmNewBytes,
    runs: Object.fromEntries([...times].map(([tool, steps]) => [tool, Object.fromEntries(steps)])),
  };
  const rows: Row[] = [
    {
      scenario: 'ingest-local',
      metric: 'tv cold push s',
      value: String(best('tv', 'cold')),
      note: `${data.size / MiB} MiB, ${mbps(best('tv', 'cold'))} MB/s; rounds ${rounds('tv', 'cold')}`,
    },
    {
      scenario: 'ingest-local',
      metric: 'tv warm push s',
      value: String(best('tv', 'warm')),
      note: `${mbps(best('tv', 'warm'))} MB/s, new ${(data.warmNewBytes / MiB).toFixed(1)} MiB; rounds ${rounds('tv', 'warm')}`,
    },
    {
      scenario: 'ingest-local',
      metric: 'tv unchanged / one changed s',
      value: `${best('tv', 'unchanged')} / ${best('tv', 'folder one changed')}`,
      note: `v2 again; 16 x ${data.fileSize / MiB} MiB with one rewritten in places; rounds ${rounds('tv', 'unchanged')} / ${rounds('tv', 'folder one changed')}`,
    },
  ];
  for (const tool of [...times.keys()].filter((t) => t !== 'tv')) {
    const ratio = (step: string) => round(best('tv', step) / best(tool, step));
    json[tool] = Object.fromEntries(
      [...VERSION_STEPS, ...FOLDER_STEPS].map((step) => [
        step,
        { seconds: best(tool, step), ratio: ratio(step) },
      ]),
    );
    const borg = tool === 'borg';
    rows.push(
      {
        scenario: 'ingest-local',
        metric: `${tool} cold / warm / unchanged s`,
        value: `${best(tool, 'cold')} / ${best(tool, 'warm')} / ${best(tool, 'unchanged')}`,
        note: `rounds ${rounds(tool, 'cold')} / ${rounds(tool, 'warm')} / ${rounds(tool, 'unchanged')}`,
      },
      {
        scenario: 'ingest-local',
        metric: `tv/${tool} cold, warm, unchanged`,
        value: `${ratio('cold')}, ${ratio('warm')}, ${ratio('unchanged')}`,
        note: borg ? 'targets: cold <= 1.0, warm <= 0.33, unchanged <= 0.2' : 'for reference',
      },
    );
    if (borg)
      rows.push({
        scenario: 'ingest-local',
        metric: 'tv/borg folder one changed',
        value: String(ratio('folder one changed')),
        note: `borg ${best(tool, 'folder one changed')} s (rounds ${rounds(tool, 'folder one changed')}); cold ${best('tv', 'folder cold')} vs ${best(tool, 'folder cold')} s; target <= 0.2`,
      });
  }
  return { json: { ingestLocal: json }, rows };
}
