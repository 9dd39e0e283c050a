import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { buildGguf, type GgufSpec, llamaGguf } from '../fixtures/gguf';
import { startServe, type ServeProcess } from './serve';

const shots = 'test-results/screens';
let serve: ServeProcess;
let dir: string;

/** v1 and a requantized v2: one tensor retyped F16 → Q8_0, one fine-tuned, general.name changed. */
function versions(): [GgufSpec, GgufSpec] {
  const v1 = llamaGguf(
    3,
    256,
    Array.from({ length: 3000 }, (_, i) => `tok${i}`),
  );
  const v2: GgufSpec = {
    ...v1,
    metadata: v1.metadata.map(([k, v]) =>
      k === 'general.name' ? [k, { string: 'tiny-llama-q8' }] : [k, v],
    ),
    tensors: v1.tensors.map((t) =>
      t.name === 'blk.0.ffn_up.weight'
        ? { ...t, type: 'Q8_0', seed: t.seed + 1 }
        : t.name === 'blk.2.attn_q.weight'
          ? { ...t, seed: 5555 }
          : t,
    ),
  };
  return [v1, v2];
}

test.beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tv-e2e-formats-'));
  const env = {
    ...process.env,
    TV_REPO: join(dir, 'repo'),
    XDG_DATA_HOME: join(dir, 'data'),
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_CACHE_HOME: join(dir, 'cache'),
  };
  for (const [i, spec] of versions().entries()) {
    const folder = join(dir, `v${i + 1}`);
    await mkdir(folder);
    await writeFile(join(folder, 'model.gguf'), buildGguf(spec));
    execFileSync(process.execPath, ['bin/tv.mjs', 'push', 'tiny-gguf', folder, '-m', `v${i + 1}`], {
      env,
    });
  }
  serve = await startServe(env);
});
test.afterAll(async () => {
  await serve?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a GGUF diff shows its format, its retyped tensor and its metadata change; the report maps tensors to new chunks', async ({
  page,
}) => {
  await page.goto(serve.url);
  await page.getByRole('button', { name: 'tiny-gguf 2 versions' }).click();
  await page.getByRole('button', { name: 'Diff with v1' }).click();

  const file = page.getByTestId('diff-file').filter({ hasText: 'model.gguf' });
  await expect(file.getByTestId('file-format')).toHaveText('GGUF');
  const tensors = file.getByTestId('tensor-table');
  // Rows of tensors (the table groups them by layer under header rows).
  await expect(tensors.locator('tbody tr:not(.group)')).toHaveCount(2);
  await expect(tensors).toContainText('retyped F16 → Q8_0');
  await expect(
    tensors.locator('tr.modified').filter({ hasText: 'blk.2.attn_q.weight' }),
  ).toBeVisible();
  const metadata = file.getByTestId('metadata-table');
  const name = metadata.locator('tr.modified').filter({ hasText: 'general.name' });
  await expect(name.locator('del')).toHaveText('tiny-llama');
  await expect(name.locator('ins')).toHaveText('tiny-llama-q8');
  await expect(metadata.locator('tbody tr')).toHaveCount(1);
  await page.screenshot({ path: `${shots}/gguf-diff.png`, fullPage: true });

  await page.getByRole('button', { name: '← back to the model' }).click();
  await page
    .getByTestId('timeline')
    .locator('li')
    .first()
    .getByRole('button', { name: 'Report' })
    .click();
  const report = page.getByTestId('report-file').filter({ hasText: 'model.gguf' });
  await expect(report.getByTestId('file-format')).toHaveText('GGUF');
  await expect(report.getByTestId('tensor-table').locator('th')).toContainText(['new']);
  await report.getByTestId('tensor-table').getByText('blk.2.attn_q.weight').click();
  await expect(report.getByTestId('chunk-map-caption')).toContainText(
    /blk.2.attn_q.weight: [\d.]+ KiB of 68.0 KiB in new chunks/,
  );
  const map = report.getByTestId('chunk-map');
  const box = (await map.boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
  await expect(report.getByTestId('chunk-map-caption')).toContainText(
    /^at [\d.]+ [KM]iB: .*weight · /,
  );
  await page.screenshot({ path: `${shots}/gguf-report.png`, fullPage: true });
});
