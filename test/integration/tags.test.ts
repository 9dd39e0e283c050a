import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RemoveResult, TagMoveSummary, TagSummary, VersionSummary } from '../../shared/types';
import { seededBytes } from '../unit/prng';
import { startServers, type TestServers } from './stores';
import { json, tv } from './tv';

let servers: TestServers;
let n = 0;
const fresh = (name: string) => join(servers.work.path, `${name}-${++n}`);
beforeAll(async () => {
  servers = await startServers('tv-tags-');
});
afterAll(() => servers?.stop());

/** A repository with versions v1..v3 of model m (each a different model.bin). */
async function threeVersions(env: NodeJS.ProcessEnv): Promise<string[]> {
  const ids: string[] = [];
  for (let v = 1; v <= 3; v++) {
    const src = fresh('src');
    await mkdir(src);
    await writeFile(join(src, 'model.bin'), seededBytes(v, 100_000));
    const pushed = await tv(['push', 'm', src, '--json'], env);
    expect(pushed.code, pushed.stderr).toBe(0);
    ids.push((json(pushed.stdout) as { id: string }).id);
  }
  return ids;
}

const envFor = (backend: 'local' | 's3'): NodeJS.ProcessEnv =>
  backend === 'local'
    ? { TV_REPO: fresh('repo') }
    : {
        TV_REPO: `s3://${servers.s3.bucket}/tags-${++n}`,
        TV_REDIS_URL: servers.redis.url,
        ...servers.s3.awsEnv(),
      };

describe('tags', () => {
  it('MODEL@NAME selects the tagged version wherever a selector does; log and tags show it', async () => {
    const env = envFor('local');
    const ids = await threeVersions(env);
    expect((await tv(['tag', 'm@v2', 'prod'], env)).stdout).toContain('m: prod -> v2');
    const dest = fresh('out');
    expect((await tv(['pull', 'm@prod', dest], env)).code).toBe(0);
    expect((await readFile(join(dest, 'model.bin'))).equals(seededBytes(2, 100_000))).toBe(true);
    const diff = json((await tv(['diff', 'm@prod', 'm@v3', '--json'], env)).stdout) as {
      from: { label: string };
    };
    expect(diff.from.label).toBe('v2');
    const log = json((await tv(['log', 'm', '--json'], env)).stdout) as VersionSummary[];
    expect(log.map((v) => v.tags)).toEqual([[], ['prod'], []]);
    expect((await tv(['log', 'm'], env)).stdout).toMatch(/v2 .* prod/);
    // Moved: a new record; the history keeps both.
    const moved = await tv(['tag', 'm@v3', 'prod'], env);
    expect(moved.stdout).toContain('m: moved prod from v2 to v3');
    const tags = json((await tv(['tags', 'm', '--json'], env)).stdout) as TagSummary[];
    expect(tags).toMatchObject([{ name: 'prod', version: 'v3', id: ids[2], removed: false }]);
    const history = json(
      (await tv(['tags', 'm', '--history', '--json'], env)).stdout,
    ) as TagMoveSummary[];
    expect(history.map((h) => [h.from?.version ?? null, h.to?.version ?? null])).toEqual([
      [null, 'v2'],
      ['v2', 'v3'],
    ]);
    // Deleted: MODEL@prod no longer resolves.
    expect((await tv(['tag', '--delete', 'm', 'prod'], env)).stdout).toContain('deleted tag prod');
    const gone = await tv(['pull', 'm@prod', fresh('out')], env);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('has no version "prod", nor a tag of that name');
  });

  it('refuses names a selector reads otherwise, and tags of removed versions say so', async () => {
    const env = envFor('local');
    await threeVersions(env);
    for (const [name, why] of [
      ['v2', 'already means a version'],
      ['latest', 'already means a version'],
      ['beef', 'reads as a version id prefix'],
      ['a/b', 'invalid tag name'],
      ['..x', 'invalid tag name'],
    ]) {
      const refused = await tv(['tag', 'm@v1', name as string], env);
      expect(refused.code, name).toBe(1);
      expect(refused.stderr, name).toContain(why);
    }
    expect((await tv(['tag', 'm@v1', 'beefy-2'], env)).code).toBe(0);
    expect((await tv(['rm', 'm@v1'], env)).code).toBe(0);
    const removed = await tv(['pull', 'm@beefy-2', fresh('out')], env);
    expect(removed.code).toBe(1);
    expect(removed.stderr).toContain('tag "beefy-2" of m points at v1, which was removed');
    const tags = json((await tv(['tags', 'm', '--json'], env)).stdout) as TagSummary[];
    expect(tags).toMatchObject([{ name: 'beefy-2', version: 'v1', removed: true }]);
  });

  it('tv rm of a tagged version says which tags it leaves pointing at it, and what to do', async () => {
    const env = envFor('local');
    await threeVersions(env);
    expect((await tv(['tag', 'm@v2', 'prod'], env)).code).toBe(0);
    expect((await tv(['tag', 'm@v2', 'candidate'], env)).code).toBe(0);
    expect((await tv(['tag', 'm@v3', 'next'], env)).code).toBe(0);
    const removed = await tv(['rm', 'm@prod'], env);
    expect(removed.code).toBe(0);
    expect(removed.stdout.trim().split('\n')).toEqual([
      'removed m v2 (run tv gc to reclaim space)',
      '  tags candidate, prod still point at v2, which is removed: move them (tv tag m@vN NAME) or delete them (tv tag --delete m NAME)',
    ]);
    const asJson = json((await tv(['rm', 'm@v3', '--json'], env)).stdout) as RemoveResult;
    expect(asJson).toEqual({
      model: 'm',
      removed: [{ version: 'v3', id: expect.any(String) }],
      tagsLeft: [{ name: 'next', version: 'v3' }],
    });
    // An untagged version: nothing more to say.
    expect((await tv(['rm', 'm@v1'], env)).stdout.trim()).toBe(
      'removed m v1 (run tv gc to reclaim space)',
    );
  });
});

for (const backend of ['local', 's3'] as const) {
  describe(`tags (${backend})`, () => {
    it('two processes moving one tag at once both land; the newest record wins for everyone', async () => {
      const env = envFor(backend);
      const ids = await threeVersions(env);
      const [a, b] = await Promise.all([
        tv(['tag', 'm@v1', 'prod', '--json'], env),
        tv(['tag', 'm@v2', 'prod', '--json'], env),
      ]);
      expect([a.code, b.code]).toEqual([0, 0]);
      const history = json(
        (await tv(['tags', 'm', '--history', '--json'], env)).stdout,
      ) as TagMoveSummary[];
      expect(history.map((h) => h.to?.id).sort()).toEqual([ids[0], ids[1]].sort());
      // The newest record (by its time, then its key) is where the tag points, for every client.
      const newest = [...history].sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0)).at(-1);
      const tags = json((await tv(['tags', 'm', '--json'], env)).stdout) as TagSummary[];
      const pulled = fresh('out');
      expect((await tv(['pull', 'm@prod', pulled], env)).code).toBe(0);
      const expected = tags[0]?.id === ids[0] ? 1 : 2;
      expect(tags[0]?.id).toBe(newest?.to?.id);
      expect(
        (await readFile(join(pulled, 'model.bin'))).equals(seededBytes(expected, 100_000)),
      ).toBe(true);
    });
  });
}
