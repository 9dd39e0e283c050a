import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { checkpointSpec, fineTune, writeSafetensors } from '../fixtures/safetensors';
import { RedisServer } from '../harness/redis';
import { S3Server } from '../harness/s3';
import { startServe, type ServeProcess } from './serve';

/** The cache light of a Redis that answers: up, or degraded after a timeout in the last minute. */
const CACHE_ANSWERS = /cache (up|degraded)$/;

const shots = 'test-results/screens';
let redis: RedisServer;
let s3: S3Server;
let serve: ServeProcess;
let dir: string;

test.beforeAll(async () => {
  [redis, s3] = await Promise.all([RedisServer.start(), S3Server.start()]);
  dir = await mkdtemp(join(tmpdir(), 'tv-e2e-'));
  serve = await startServe({
    TV_REPO: `s3://${s3.bucket}/e2e`,
    TV_REDIS_URL: redis.url,
    ...s3.awsEnv(),
  });
});
test.afterAll(async () => {
  await serve?.stop();
  await Promise.all([redis?.dispose(), s3?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('push checkpoints through the page, read the report and the diff, watch the cache go down and back', async ({
  page,
}) => {
  test.setTimeout(120_000);
  const base = checkpointSpec(2, 256);
  const changed = ['model.layers.1.self_attn.k_proj.weight'];
  await mkdir(join(dir, 'v1'));
  await writeSafetensors(join(dir, 'v1', 'model.safetensors'), base);
  await writeFile(join(dir, 'v1', 'config.json'), '{"layers": 2}');

  await page.goto(serve.url);
  await page.getByRole('button', { name: 'New model' }).click();
  await page.getByLabel('Model name').fill('llama-ft');
  await page.getByRole('button', { name: 'Create' }).click();
  await expect(page.getByRole('heading', { name: 'llama-ft' })).toBeVisible();
  await page.screenshot({ path: `${shots}/empty-model.png` });

  // v1 through the file input.
  await page
    .getByTestId('file-input')
    .setInputFiles([join(dir, 'v1', 'model.safetensors'), join(dir, 'v1', 'config.json')]);
  await expect(page.getByTestId('selected-files')).toContainText('2 files');
  await page.getByLabel('Message').fill('base model');
  await page.getByRole('button', { name: 'Push llama-ft' }).click();
  await expect(page.getByTestId('push-done')).toContainText('v1 written', { timeout: 30_000 });
  await expect(page.getByTestId('timeline')).toContainText('base model');
  // Up, or degraded: a command that timed out within the last minute shows as degraded, which
  // a machine loaded by other work can cause; never down.
  await expect(page.getByTestId('cache-light').first()).toHaveText(CACHE_ANSWERS);

  // The same files again: information, not a failure, and no new version.
  await page
    .getByTestId('file-input')
    .setInputFiles([join(dir, 'v1', 'model.safetensors'), join(dir, 'v1', 'config.json')]);
  await page.getByRole('button', { name: 'Push llama-ft' }).click();
  await expect(page.getByTestId('push-done')).toContainText('Identical to v1: no new version');
  await expect(page.getByRole('status').filter({ hasText: 'identical to v1' })).toBeVisible();
  await expect(page.getByTestId('timeline').locator('li')).toHaveCount(1);

  // v2, a fine-tune saved with a rewritten header, through a synthetic drop.
  const tuned = await (async () => {
    const path = join(dir, 'tuned.safetensors');
    await writeSafetensors(path, fineTune(base, changed), { step: '500' });
    return (await readFile(path)).toString('base64');
  })();
  await page.getByTestId('dropzone').evaluate((zone, b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], 'model.safetensors'));
    transfer.items.add(new File(['{"layers": 2}'], 'config.json'));
    zone.dispatchEvent(
      new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }),
    );
  }, tuned);
  await expect(page.getByTestId('selected-files')).toContainText('2 files');
  await page.getByLabel('Message').fill('fine-tune k_proj');
  await page.getByRole('button', { name: 'Push llama-ft' }).click();
  await expect(page.getByTestId('push-progress')).toBeVisible();
  await expect(page.getByTestId('push-done')).toContainText('v2 written', { timeout: 30_000 });
  // What the push cost: its requests to S3, and their price, labelled as an estimate.
  await expect(page.getByTestId('push-done')).toContainText(/\d+ requests \(\d+ PUT/);
  await expect(page.getByTestId('push-cost')).toContainText(
    /about \$[\d.]+ in requests \(estimate, S3 Standard list prices\)/,
  );
  await expect(page.getByTestId('timeline')).toContainText('fine-tune k_proj');
  await page.screenshot({ path: `${shots}/model.png`, fullPage: true });

  // The report of v2.
  await page
    .getByTestId('timeline')
    .locator('li')
    .first()
    .getByRole('button', { name: 'Report' })
    .click();
  const report = page.getByTestId('report');
  await expect(report.getByTestId('dedup-ratio')).toBeVisible();
  await expect(report.getByTestId('file-bar').first()).toBeVisible();
  await expect(report.getByTestId('chunk-map').first()).toBeVisible();
  const tensorTable = report.getByTestId('tensor-table');
  await expect(tensorTable.locator('tbody tr')).toHaveCount(1);
  await expect(tensorTable).toContainText(changed[0]!);
  await expect(tensorTable).toContainText('modified');
  await page.screenshot({ path: `${shots}/report.png`, fullPage: true });

  // The diff of v1 and v2.
  await page.getByRole('button', { name: '← back to the model' }).click();
  await page.getByRole('button', { name: 'Diff with v1' }).click();
  const diff = page.getByTestId('diff-files');
  await expect(diff).toContainText('model.safetensors');
  await expect(diff.locator('tr.modified')).toHaveCount(1);
  await expect(diff.locator('tr.unchanged')).toContainText('config.json');
  await page.screenshot({ path: `${shots}/diff.png`, fullPage: true });

  // Restore v1 to a folder, and verify the model, from its page.
  await page.getByRole('button', { name: '← back to the model' }).click();
  await page.getByLabel('Version to restore').selectOption('v1');
  await page.getByLabel('Destination folder').fill(join(dir, 'restored'));
  await page.getByRole('button', { name: 'Restore', exact: true }).click();
  await expect(page.getByTestId('restore-done')).toContainText('2 files');
  expect(
    (await readFile(join(dir, 'restored', 'model.safetensors'))).equals(
      await readFile(join(dir, 'v1', 'model.safetensors')),
    ),
  ).toBe(true);
  await page.getByRole('button', { name: 'Verify llama-ft' }).click();
  await expect(page.getByTestId('verify-result')).toContainText('✓ 2 versions');
  await page.screenshot({ path: `${shots}/maintenance.png`, fullPage: true });

  // Settings: read-only in browser mode; the connection tests say what they reached.
  await page.getByRole('button', { name: 'Settings' }).click();
  await expect(page.getByTestId('settings-readonly')).toBeVisible();
  await page.getByRole('button', { name: 'Test Redis connection' }).click();
  await expect(page.getByTestId('test-redis')).toContainText('answers');
  await page.getByRole('button', { name: 'Test S3 connection' }).click();
  await expect(page.getByTestId('test-s3')).toContainText(`reached s3://${s3.bucket}/e2e`);
  await page.screenshot({ path: `${shots}/settings.png`, fullPage: true });

  // Remove v1, with a confirmation.
  await page.getByRole('button', { name: 'llama-ft' }).click();
  page.once('dialog', (dialog) => void dialog.accept());
  await page
    .getByTestId('timeline')
    .locator('li')
    .filter({ hasText: 'base model' })
    .getByRole('button', { name: 'Remove' })
    .click();
  await expect(page.getByTestId('timeline')).not.toContainText('base model');
  await expect(page.getByTestId('timeline')).toContainText('fine-tune k_proj');

  // Cache health: up, then down when Redis dies, then back.
  await page.getByRole('button', { name: 'Cache health' }).click();
  const health = page.getByTestId('cache-health');
  await expect(health.getByTestId('cache-light')).toHaveText(CACHE_ANSWERS);
  await page.screenshot({ path: `${shots}/cache-up.png` });
  await redis.kill();
  await expect(health.getByTestId('cache-light')).toContainText('down', { timeout: 15_000 });
  await page.screenshot({ path: `${shots}/cache-down.png` });
  await redis.restart();
  await expect(health.getByTestId('cache-light')).not.toContainText('down', { timeout: 20_000 });
  await page.screenshot({ path: `${shots}/cache-back.png` });
});
