import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from '../harness/redis';
import { S3Server } from '../harness/s3';
import { seededBytes } from '../unit/prng';
import { flipInFile, startServers, type TestServers } from './stores';
import { json, tv, tvOnTerminal } from './tv';

let servers: TestServers;
let work: TestServers['work'];
let redis: RedisServer;
let s3: S3Server;
let src: string;
beforeAll(async () => {
  servers = await startServers('tv-cli-');
  ({ redis, s3, work } = servers);
  src = join(work.path, 'model');
  await mkdir(join(src, 'tokenizer'), { recursive: true });
  await writeFile(join(src, 'model.safetensors'), seededBytes(3, 2_000_000));
  await writeFile(join(src, 'tokenizer/tokenizer.json'), '{"vocab": {}}');
});
afterAll(() => servers?.stop());
/** Whether `dest` holds the model's weights as they are in `src`, byte for byte. */
const sameWeights = async (dest: string) =>
  (await readFile(join(dest, 'model.safetensors'))).equals(
    await readFile(join(src, 'model.safetensors')),
  );

describe('tv command line', () => {
  it('shows help without touching a repository', async () => {
    const help = await tv(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['init', 'push', 'log', 'models', 'pull', 'cache', 'serve'])
      expect(help.stdout).toContain(command);
  });

  it('init, push, log, models, pull with --json: one JSON object each, files identical', async () => {
    const repo = join(work.path, 'repo-json');
    const env = { TV_REPO: repo };
    const init = await tv(['init', '--chunk-size', '8KiB', '--hash', 'blake3', '--json'], env);
    expect(init.code).toBe(0);
    expect(json(init.stdout)).toMatchObject({
      hash: 'blake3',
      chunking: { minSize: 2048, avgSize: 8192, maxSize: 32768 },
    });
    const again = await tv(['init'], env);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe(
      `tv: ${repo} already holds a TensorVault repository: nothing to do`,
    );

    const pushed = await tv(['push', 'bert', src, '-m', 'first', '--json'], env);
    expect(pushed.code).toBe(0);
    const result = json(pushed.stdout) as Record<string, unknown>;
    for (const key of [
      'model',
      'version',
      'id',
      'files',
      'logicalBytes',
      'newBytes',
      'reusedBytes',
      'chunks',
      'newChunks',
      'dedupRatio',
      'seconds',
    ]) {
      expect(result, key).toHaveProperty(key);
    }
    expect(result).toMatchObject({ model: 'bert', version: 'v1', files: 2 });
    expect(pushed.stderr).toBe('');

    const log = json((await tv(['log', 'bert', '--json'], env)).stdout) as {
      label: string;
      message: string;
    }[];
    expect(log.map((v) => [v.label, v.message])).toEqual([['v1', 'first']]);
    expect(json((await tv(['models', '--json'], env)).stdout)).toMatchObject([
      { name: 'bert', versions: 1 },
    ]);

    const dest = join(work.path, 'out-json');
    const pulled = await tv(['pull', 'bert@v1', dest, '--json'], env);
    expect(pulled.code).toBe(0);
    expect(json(pulled.stdout)).toMatchObject({ files: 2, version: 'v1' });
    expect(await sameWeights(dest)).toBe(true);
  });

  it('push and pull work on a terminal, with a progress bar, and --json there too', async () => {
    const env = { TV_REPO: join(work.path, 'repo-tty') };
    const pushed = await tvOnTerminal(['push', 'tty-model', src, '-m', 'on a terminal'], env);
    expect(pushed.output).not.toContain('is not a constructor');
    expect(pushed.code).toBe(0);
    expect(pushed.output).toMatch(/tty-model v1 \([0-9a-f]{12}\): 2 files/);
    // The same files again: a version only with --allow-same.
    const asJson = await tvOnTerminal(['push', 'tty-model', src, '--allow-same', '--json'], env);
    expect(asJson.code).toBe(0);
    expect(asJson.output).toMatch(/"version":"v2"/);
    const dest = join(work.path, 'out-tty');
    const pulled = await tvOnTerminal(['pull', 'tty-model@v1', dest], env);
    expect(pulled.code).toBe(0);
    expect(pulled.output).toContain(`written to ${dest}`);
    expect(await sameWeights(dest)).toBe(true);
  });

  it('upgrade moves a format 1 folder to format 3 once, keeping its versions readable', async () => {
    const repo = join(work.path, 'repo-upgrade');
    const env = { TV_REPO: repo };
    expect((await tv(['init'], env)).code).toBe(0);
    const configPath = join(repo, 'config');
    const config = JSON.parse(await readFile(configPath, 'utf8')) as { format: number };
    await writeFile(configPath, JSON.stringify({ ...config, format: 1 }));
    expect((await tv(['push', 'm', src], env)).code).toBe(0);
    const upgraded = await tv(['upgrade'], env);
    expect(upgraded.code).toBe(0);
    expect(upgraded.stdout).toContain(
      `Upgraded ${repo} from format 1 to 3: new chunks go to packs`,
    );
    expect(json((await tv(['upgrade', '--json'], env)).stdout)).toEqual({
      location: repo,
      from: 3,
      to: 3,
      looseObjects: 0,
    });
    await writeFile(join(src, 'extra.json'), '{"upgraded": true}');
    try {
      expect((await tv(['push', 'm', src], env)).code).toBe(0);
    } finally {
      await rm(join(src, 'extra.json'));
    }
    const out = join(work.path, 'upgrade-out');
    expect((await tv(['pull', 'm@v1', out], env)).code).toBe(0);
    expect(
      (await readFile(join(out, 'model.safetensors'))).equals(
        Buffer.from(seededBytes(3, 2_000_000)),
      ),
    ).toBe(true);
    expect((await tv(['verify', '--full'], env)).code).toBe(0);
  });

  it('fails with one line on stderr, a JSON error on stdout, and a non-zero exit; bad input creates nothing', async () => {
    const env = { TV_REPO: join(work.path, 'repo-errors') };
    const bad = await tv(['push', 'bad/name', src, '--json'], env);
    expect(bad.code).toBe(1);
    expect(json(bad.stdout)).toEqual({
      error: expect.stringContaining('invalid model name "bad/name"'),
    });
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    const missing = await tv(['log', 'bert'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toMatch(
      /^tv: no TensorVault repository at .*: run `tv init` there first/,
    );
    expect((await tv(['push', 'x', join(work.path, 'nowhere')], env)).stderr.trim()).toBe(
      `tv: no such file or folder: ${join(work.path, 'nowhere')}`,
    );
  });

  it('a repository URL missing the "//" after its scheme is refused, not taken for a folder', async () => {
    for (const location of ['s3:/team-models/tv', 's3:team-models']) {
      const run = await tv(['log', 'bert'], { TV_REPO: location });
      expect(run.code, location).toBe(1);
      expect(run.stderr.trim()).toBe(
        `tv: repository location "${location}" looks like a URL without "//" after "s3:": write s3://bucket/prefix (a folder of that name: ./${location})`,
      );
    }
    // Given as a relative path, such a name is a folder.
    const folder = await tv(['log', 'bert'], { TV_REPO: `./s3:/x` });
    expect(folder.stderr).toMatch(
      /no TensorVault repository at .*s3:\/x: run `tv init` there first/,
    );
  });

  it('an S3 endpoint written without its scheme is named, with the form to write', async () => {
    const hostPort = s3.endpoint.replace(/^http:\/\//, '');
    for (const [variable, value] of [
      ['AWS_ENDPOINT_URL_S3', hostPort],
      ['AWS_ENDPOINT_URL_S3', hostPort.replace('127.0.0.1', 'localhost')],
      ['AWS_ENDPOINT_URL', hostPort],
    ] as const) {
      const run = await tv(['models'], {
        ...s3.awsEnv(),
        AWS_ENDPOINT_URL_S3: '',
        [variable]: value,
        TV_REPO: `s3://${s3.bucket}/team`,
      });
      expect(run.code, value).toBe(1);
      expect(run.stderr.trim()).toBe(
        `tv: the S3 endpoint "${value}" (${variable}) is not a URL: write it with its scheme, as http://${value} or https://${value}`,
      );
    }
  });

  it('a pack lost for good: verify --full says to push the files again, and that mends every version', async () => {
    const env = { TV_REPO: join(work.path, 'repo-lost-pack') };
    expect((await tv(['push', 'lp', src], env)).code).toBe(0);
    const packs = join(work.path, 'repo-lost-pack', 'data');
    for (const shard of await readdir(packs))
      for (const pack of await readdir(join(packs, shard))) await rm(join(packs, shard, pack));
    const damaged = await tv(['verify', '--full'], env);
    expect(damaged.code).toBe(1);
    expect(damaged.stdout).toContain(
      '  to store missing chunks again: push the files named above again (tv push MODEL PATHS --no-cache); every version that names them is whole again',
    );
    const again = await tv(['push', 'lp', src, '--no-cache', '--allow-same', '--json'], env);
    expect(again.code, again.stderr).toBe(0);
    expect((json(again.stdout) as { newChunks: number }).newChunks).toBeGreaterThan(0);
    const mended = await tv(['verify', '--full'], env);
    expect(mended.code, mended.stdout).toBe(0);
    const dest = join(work.path, 'lost-pack-v1');
    expect((await tv(['pull', 'lp@v1', dest], env)).code).toBe(0);
    expect(await sameWeights(dest)).toBe(true);
  });

  it('a corrupt copy in a pack: verify --full says in one line what to run; repair packs, then a push of the files, mend the version', async () => {
    const repo = join(work.path, 'repo-corrupt');
    const env = { TV_REPO: repo };
    expect((await tv(['push', 'cc', src], env)).code).toBe(0);
    // One bit flipped in the middle of the weights, where they lie in their pack.
    const weights = await readFile(join(src, 'model.safetensors'));
    const shard = (await readdir(join(repo, 'data')))[0]!;
    const pack = (await readdir(join(repo, 'data', shard)))[0]!;
    const file = join(repo, 'data', shard, pack);
    const at = (await readFile(file)).indexOf(weights.subarray(1_000_000, 1_000_064));
    expect(at).toBeGreaterThan(0);
    await flipInFile(file, at);

    const damaged = await tv(['verify', '--full'], env);
    expect(damaged.code).toBe(1);
    expect(damaged.stdout).toMatch(
      new RegExp(`^  corrupt chunk [0-9a-f]{64} \\(model.safetensors\\) in pack ${pack}$`, 'm'),
    );
    expect(damaged.stdout).toContain(
      `  to mend the corrupt copies: tv repair packs ${pack} (drops them from the index and their cache keys); then push the files named above again (tv push MODEL PATHS --no-cache) to store them again`,
    );
    expect(damaged.stdout).toContain('  1 pack checked against its trailer\n');
    const repaired = await tv(['repair', 'packs', pack], env);
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(repaired.stdout).toMatch(
      /^1 pack read back \(\d+ copies\): 1 corrupt copy dropped from the index$/m,
    );
    expect(repaired.stdout).toMatch(/in pack [0-9a-f]{32}: no intact copy left$/m);
    expect(repaired.stdout).toMatch(
      /^ {2}[\d.]+ KiB of dropped copies stay in their packs as dead bytes, named by no index, until gc rewrites those packs$/m,
    );
    expect(repaired.stdout).toContain(
      '  to store it again, push the files that need it again: tv push MODEL PATHS --no-cache (cc v1: model.safetensors)',
    );
    // The trailer still names the dropped copy: a rebuild from trailers does not bring it back.
    const rebuilt = await tv(['repair', 'index'], env);
    expect(rebuilt.stdout.trim()).toBe(
      '1 pack: 0 indexed again from their trailers, 0 gone from the store dropped from the index; 0 damaged index objects replaced; 0 loose objects named',
    );
    const unknown = await tv(['repair', 'packs', 'f'.repeat(32)], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toBe(
      `tv: no pack named ${'f'.repeat(32)} in the index of ${repo}: \`tv verify --full\` names the packs that hold corrupt copies (\`tv repair index\` indexes packs the index lost)`,
    );

    const again = await tv(['push', 'cc', src, '--no-cache', '--allow-same', '--json'], env);
    expect(again.code, again.stderr).toBe(0);
    expect((json(again.stdout) as { newChunks: number }).newChunks).toBe(1);
    const mended = await tv(['verify', '--full'], env);
    expect(mended.code, mended.stdout).toBe(0);
    expect(mended.stdout).toContain('  2 packs checked against their trailers\n');
    const dest = join(work.path, 'corrupt-v1');
    expect((await tv(['pull', 'cc@v1', dest], env)).code).toBe(0);
    expect((await readFile(join(dest, 'model.safetensors'))).equals(weights)).toBe(true);
  });

  it('pushes to S3 configured the AWS way, with the Redis cache, and keeps stderr clean', async () => {
    const env = {
      TV_REPO: `s3://${s3.bucket}/team`,
      TV_REDIS_URL: redis.url,
      ...s3.awsEnv(),
    };
    const first = await tv(['push', 'team-model', src, '--json'], env);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(json(first.stdout)).toMatchObject({ version: 'v1', createdRepository: true });
    const second = await tv(['push', 'team-model', src, '--allow-same', '--json'], env);
    expect(json(second.stdout)).toMatchObject({ version: 'v2', newBytes: 0 });
    const status = await tv(['cache', 'status', '--json'], env);
    expect(json(status.stdout)).toMatchObject({ state: 'up', redis: redis.url });
    // The local server checks the access key id (not the signature): a wrong id is refused.
    const wrong = await tv(['models'], {
      ...env,
      AWS_ACCESS_KEY_ID: 'NOT-A-KEY',
      AWS_SECRET_ACCESS_KEY: 'very-secret-value',
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim()).toMatch(/^tv: cannot open s3:\/\/.*: S3 refused the credentials/);
    expect(wrong.stderr + wrong.stdout).not.toContain('very-secret-value');
    // The bucket is checked alongside the first read: a missing one is named, for a read and
    // for a push that would create the repository.
    for (const args of [['models'], ['push', 'team-model', src]]) {
      const missing = await tv(args, { ...env, TV_REPO: 's3://no-such-bucket-here/team' });
      expect(missing.code).toBe(1);
      expect(missing.stderr.trim()).toMatch(
        /^tv: cannot open s3:\/\/no-such-bucket-here\/team: the bucket "no-such-bucket-here" does not exist at http:\/\/127\.0\.0\.1:\d+: create it or check the repository URL$/,
      );
    }
  });
});

describe('tv serve', () => {
  it('on a port another program holds, says so and how to pick another, in one line', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as AddressInfo).port;
    try {
      const run = await tv(['serve', '--port', String(port)], {
        TV_REPO: join(work.path, 'repo-serve'),
      });
      expect(run.code).toBe(1);
      expect(run.stderr.trim()).toBe(
        `tv: port ${port} on 127.0.0.1 is in use by another program: choose another with --port N, or --port 0 for a free one`,
      );
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });
});

describe('tv diff --stats', () => {
  it('adds how much each changed tensor moved to the --json diff and to the table', async () => {
    const { checkpointSpec, fineTune, writeSafetensors } = await import('../fixtures/safetensors');
    const env = { TV_REPO: join(work.path, 'repo-stats') };
    const base = checkpointSpec(2, 128).map((t) => ({ ...t, values: 'normal' as const }));
    const folder = join(work.path, 'stats-src');
    await mkdir(folder, { recursive: true });
    await writeSafetensors(join(folder, 'model.safetensors'), base);
    expect((await tv(['push', 'st', folder], env)).code).toBe(0);
    await writeSafetensors(join(folder, 'model.safetensors'), fineTune(base, ['lm_head.weight']));
    expect((await tv(['push', 'st', folder], env)).code).toBe(0);
    const r = await tv(['diff', 'st@v1', 'st@v2', '--stats', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const diff = json(r.stdout) as {
      files: { path: string; tensors?: { name: string; stats?: { relativeL2: number } }[] }[];
    };
    const tensors = diff.files.find((f) => f.path === 'model.safetensors')!.tensors!;
    const head = tensors.find((t) => t.name === 'lm_head.weight')!;
    expect(head.stats!.relativeL2).toBeGreaterThan(1.3);
    expect(head.stats!.relativeL2).toBeLessThan(1.5);
    expect(tensors.filter((t) => t.stats)).toHaveLength(1);
    const text = await tv(['diff', 'st@v1', 'st@v2', '--stats'], env);
    expect(text.stdout).toMatch(
      /lm_head\.weight +modified +BF16 .* 1\.4\d +[\d.e+-]+ +(99\.\d|100\.0)%/,
    );
  });
});
