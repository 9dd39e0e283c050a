import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { startServe, type ServeProcess } from './serve';

let serve: ServeProcess;
let dir: string;

/** v1 compresses (text-like bytes), v2 adds only random bytes (stored as they are). */
test.beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tv-compression-e2e-'));
  const env = {
    ...process.env,
    TV_REPO: join(dir, 'repo'),
    TV_REDIS_URL: '',
    XDG_CACHE_HOME: join(dir, 'cache'),
  };
  const run = (args: string[]) => {
    const ran = spawnSync(process.execPath, ['bin/tv.mjs', ...args], { env });
    expect(ran.status, String(ran.stderr)).toBe(0);
  };
  run(['init', '--compression', 'lz4']);
  const v1 = join(dir, 'v1');
  await mkdir(v1);
  const line = 'layer.0.weight 0.0123 -0.0456 0.0789\n';
  await writeFile(join(v1, 'weights.txt'), line.repeat(20_000));
  run(['push', 'm', v1]);
  await writeFile(
    join(v1, 'noise.bin'),
    Buffer.from(crypto.getRandomValues(new Uint8Array(60_000))),
  );
  run(['push', 'm', v1]);
  serve = await startServe({ ...env, XDG_CACHE_HOME: join(dir, 'cache-app') });
});
test.afterAll(async () => {
  await serve?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the chart shows a third bar, stored (compressed), lower than the new chunks where compression paid', async ({
  page,
}) => {
  await page.goto(serve.url);
  await page.getByRole('button', { name: /^m/ }).first().click();
  const chart = page.getByRole('region', { name: 'Logical and stored bytes' });
  await expect(chart.getByText('stored (compressed)')).toBeVisible();
  await expect(chart.locator('.recharts-legend-item-text')).toHaveText([
    'logical',
    'stored (new chunks)',
    'stored (compressed)',
    'manifests',
  ]);
  // The series in order: logical, stored (new chunks), stored (compressed), manifests.
  const series = chart.locator('.recharts-bar');
  await expect(series).toHaveCount(4);
  // Every bar measured in one step in the page, once the layout has settled: the chart
  // re-renders when the versions reload, and its container is sized after its first render (on
  // a loaded machine a measurement taken between the two found v1's bars 0 and 0.46 px high).
  const measure = () =>
    series.evaluateAll((all) =>
      all.map((s) =>
        [...s.querySelectorAll('.recharts-rectangle')].map((b) => b.getBoundingClientRect().height),
      ),
    );
  let last = '';
  await expect
    .poll(
      async () => {
        const now = await measure();
        const settled = JSON.stringify(now) === last && now[2]?.length === 2;
        last = JSON.stringify(now);
        return settled;
      },
      { intervals: [250] },
    )
    .toBe(true);
  const [, [newV1, newV2], [storedV1, storedV2]] = JSON.parse(last) as [
    number[],
    number[],
    number[],
  ];
  // v1's text compressed well; v2's new chunks (random bytes) are stored as they are.
  expect(storedV1!).toBeLessThan(newV1! * 0.5);
  expect(Math.abs(storedV2! - newV2!)).toBeLessThan(1);
  await expect(page.getByTestId('stored-compressed')).toHaveCount(1);
  await expect(page.getByTestId('stored-compressed')).toContainText('compressed');
});
