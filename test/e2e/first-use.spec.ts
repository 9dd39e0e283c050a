import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import {
  checkpointSpec,
  fineTune,
  writeSafetensors,
  type TensorSpec,
} from '../fixtures/safetensors';
import { startServe, type ServeProcess } from './serve';

// The app as a first-time user meets it (issue: fast reports, restore paths, the layer map, delta
// statistics, text diffs, the rough edges), in Chromium against browser mode.
const shots = 'test-results/screens';
const LAYERS = 12;
let serve: ServeProcess;
let dir: string;
let home: string;

const layerTensors = (spec: TensorSpec[], layers: number[]) =>
  spec.filter((t) => layers.some((l) => t.name.includes(`.layers.${l}.`))).map((t) => t.name);

test.beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tv-e2e-first-use-'));
  home = join(dir, 'home');
  await mkdir(home);
  const env = {
    ...process.env,
    TV_REPO: join(dir, 'repo'),
    XDG_CACHE_HOME: join(dir, 'cache'),
    XDG_DATA_HOME: join(dir, 'data'),
    XDG_CONFIG_HOME: join(dir, 'config'),
    HOME: home,
  };
  const base = checkpointSpec(LAYERS, 128).map((t) => ({ ...t, values: 'normal' as const }));
  // v2: a fine-tune of the last two layers and the head; v3: a LoRA merge (every layer's attention).
  const tuned = fineTune(base, [...layerTensors(base, [LAYERS - 2, LAYERS - 1]), 'lm_head.weight']);
  const lora = fineTune(
    tuned,
    tuned.filter((t) => /self_attn\.[qkvo]_proj/.test(t.name)).map((t) => t.name),
    9,
  );
  const configs = [
    '{"num_hidden_layers": 12, "rope_theta": 10000, "eos_token_id": [2]}',
    '{"num_hidden_layers": 12, "rope_theta": 500000, "eos_token_id": [2]}',
    '{"num_hidden_layers": 12, "rope_theta": 500000, "eos_token_id": [2]}',
  ];
  for (const [i, spec] of [base, tuned, lora].entries()) {
    const folder = join(dir, `v${i + 1}`);
    await mkdir(folder);
    await writeSafetensors(join(folder, 'model.safetensors'), spec);
    await writeFile(join(folder, 'config.json'), configs[i]!);
    execFileSync(process.execPath, ['bin/tv.mjs', 'push', 'llama-ft', folder, '-m', `v${i + 1}`], {
      env,
    });
  }
  serve = await startServe(env);
});
test.afterAll(async () => {
  await serve?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The cells of the layer map whose bytes changed, as "row/kind". */
async function changedCells(page: Page): Promise<string[]> {
  return page
    .getByTestId('layer-map')
    .locator('td[data-kind]')
    .evaluateAll((cells) =>
      cells
        .filter((c) => Number(c.getAttribute('data-changed')) > 0)
        .map((c) => `${c.getAttribute('data-row')}/${c.getAttribute('data-kind')}`),
    );
}

async function openModel(page: Page) {
  await page.goto(serve.url);
  await page.getByRole('button', { name: 'llama-ft 3 versions' }).click();
  await expect(page.getByTestId('timeline').locator('li')).toHaveCount(3);
}

const openVersion = (page: Page, label: string, action: string) =>
  page
    .getByTestId('timeline')
    .locator('li')
    .filter({ has: page.locator('strong', { hasText: new RegExp(`^${label}$`) }) })
    .getByRole('button', { name: action })
    .click();

test('the model page: plural counts, round chart ticks, what a drop becomes, an existing name', async ({
  page,
}) => {
  await openModel(page);
  const tickLabels = page.locator('.recharts-cartesian-axis-tick-value');
  await expect(tickLabels.first()).toBeVisible();
  // The byte axis's ticks (the other axis names versions).
  const ticks = (await tickLabels.allTextContents()).filter((t) => !/^v\d+$/.test(t));
  expect(ticks.length).toBeGreaterThan(2);
  for (const tick of ticks) expect(tick).toMatch(/^(0|\d+(\.5|\.25)? (B|KiB|MiB|GiB))$/);
  // No compression in this repository: no compressed bar, and the legend in the bars' order.
  await expect(
    page
      .getByRole('region', { name: 'Logical and stored bytes' })
      .locator('.recharts-legend-item-text'),
  ).toHaveText(['logical', 'stored (new chunks)', 'manifests']);

  await page.getByTestId('file-input').setInputFiles([join(dir, 'v1', 'config.json')]);
  await expect(page.getByTestId('push-preview')).toHaveText(
    "Pushing makes a new version of llama-ft: v3's 2 files with 1 file replaced; its other files stay as they are.",
  );
  await page.screenshot({ path: `${shots}/first-use-model.png`, fullPage: true });

  await page.getByRole('button', { name: 'New model' }).click();
  await page.getByLabel('Model name').fill('llama-ft');
  await expect(page.getByTestId('model-exists')).toContainText(
    'A model named llama-ft exists already (3 versions).',
  );
  await expect(page.getByRole('button', { name: 'Create' })).toBeDisabled();
  await page.screenshot({ path: `${shots}/new-model-exists.png` });
  await page.getByRole('button', { name: 'Open llama-ft' }).click();
  await expect(page.getByRole('heading', { name: 'llama-ft' })).toBeVisible();

  await page.getByLabel('Model name').waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'New model' }).click();
  await page.getByLabel('Model name').fill('fresh-model');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByTestId('file-input').setInputFiles([join(dir, 'v1', 'config.json')]);
  await expect(page.getByTestId('push-preview')).toHaveText(
    'Pushing makes a new model, fresh-model: its v1, with 1 file.',
  );
});

test('the report: the layer map colours exactly the fine-tuned layers and the head; a kept report opens under a second', async ({
  page,
}) => {
  await openModel(page);
  await openVersion(page, 'v2', 'Report');
  const report = page.getByTestId('report');
  await expect(report.getByTestId('dedup-ratio')).toBeVisible({ timeout: 20_000 });
  const expected = [`${LAYERS - 2}`, `${LAYERS - 1}`]
    .flatMap((row) =>
      ['attn q', 'attn k', 'attn v', 'attn o', 'mlp up', 'norm'].map((k) => `${row}/${k}`),
    )
    .concat('after the layers/head');
  expect((await changedCells(page)).sort()).toEqual(expected.sort());
  // The chunk map's two bars, labelled, with a legend.
  const file = report.getByTestId('report-file').filter({ hasText: 'model.safetensors' });
  await expect(file.getByText('Where its bytes came from')).toBeVisible();
  await expect(file.getByText("This version's layout")).toBeVisible();
  await expect(report.getByTestId('chunk-legend')).toContainText('from previous version');
  // The text diff of config.json shows the changed key.
  const config = report.getByTestId('report-file').filter({ hasText: 'config.json' });
  await expect(config.getByTestId('text-diff')).toContainText('rope_theta');
  await expect(config.getByTestId('text-diff').locator('del')).toHaveText('10000');
  await expect(config.getByTestId('text-diff').locator('ins')).toHaveText('500000');
  await page.screenshot({ path: `${shots}/first-use-report.png`, fullPage: true });

  // The long table: every tensor, grouped by layer, layers without a change folded.
  await file.getByLabel('Show tensors').selectOption('all');
  const table = file.getByTestId('tensor-table');
  await expect(table.locator('tr.group')).toHaveCount(LAYERS + 2);
  await expect(table.locator('tr.group th[aria-expanded="false"]')).toHaveCount(LAYERS - 1);
  await table.locator('tr.group').filter({ hasText: 'layer 0 ' }).click();
  await expect(table.locator('tr.unchanged')).toHaveCount(6);
  await page.screenshot({ path: `${shots}/first-use-tensors-grouped.png`, fullPage: true });

  // Opened again: from this machine's cache, under a second.
  await page.getByRole('button', { name: '← back to the model' }).click();
  const started = Date.now();
  await openVersion(page, 'v2', 'Report');
  await expect(report.getByTestId('report-cached')).toBeVisible();
  expect(Date.now() - started).toBeLessThan(1000);
});

test('the diff: a LoRA merge is a band down the attention columns; delta statistics of an unchanged tensor are 0 and of a rewritten one about sqrt(2)', async ({
  page,
}) => {
  await openModel(page);
  await openVersion(page, 'v3', 'Diff with v2');
  const diff = page.getByTestId('diff');
  await expect(diff.getByTestId('diff-files')).toBeVisible({ timeout: 20_000 });
  const cells = await changedCells(page);
  expect(cells.sort()).toEqual(
    Array.from({ length: LAYERS }, (_, l) =>
      ['attn q', 'attn k', 'attn v', 'attn o'].map((k) => `${l}/${k}`),
    )
      .flat()
      .sort(),
  );
  await page.screenshot({ path: `${shots}/first-use-diff-lora.png`, fullPage: true });

  const file = diff.getByTestId('diff-file').filter({ hasText: 'model.safetensors' });
  await file.getByRole('button', { name: /Measure all 48 changed tensors/ }).click();
  const q = file.locator('tr').filter({ hasText: 'model.layers.3.self_attn.q_proj.weight' });
  await expect(q.locator('td').nth(5)).toHaveText(/^1\.(3[89]|4[0-4])$/, { timeout: 30_000 });
  await expect(page.getByLabel('Colour the layer map by')).toHaveValue('moved');
  await file.getByLabel('Show tensors').selectOption('unchanged');
  const norm = file.locator('tr').filter({ hasText: 'model.layers.3.input_layernorm.weight' });
  await norm.getByRole('button', { name: 'measure' }).click();
  await expect(norm.locator('td').nth(5)).toHaveText('0.00');
  await expect(norm.locator('td').nth(7)).toHaveText('0.0%');
  await page.screenshot({ path: `${shots}/first-use-diff-stats.png`, fullPage: true });

  // v1 to v2: the config's changed key, structurally.
  await page.getByLabel('From version').selectOption('llama-ft@v1');
  await page.getByLabel('To version').selectOption('llama-ft@v2');
  const config = diff.getByTestId('diff-file').filter({ hasText: 'config.json' });
  await expect(config.getByTestId('text-diff')).toContainText('1 key changed', {
    timeout: 20_000,
  });
  await expect(config.getByTestId('text-diff').locator('tr.modified')).toContainText('rope_theta');
  await page.screenshot({ path: `${shots}/first-use-diff-config.png`, fullPage: true });
});

test('restore paths: ~/x lands in the home folder, a relative path is refused, the absolute path is shown before and after', async ({
  page,
}) => {
  await openModel(page);
  const destination = page.getByLabel('Destination folder');
  await destination.fill('rel-restore');
  await expect(page.getByTestId('restore-target')).toContainText(
    '"rel-restore" is a relative path',
  );
  await expect(page.getByRole('button', { name: 'Restore', exact: true })).toBeDisabled();
  await page.screenshot({ path: `${shots}/restore-relative.png`, fullPage: true });

  await destination.fill('~/tv-restore');
  await expect(page.getByTestId('restore-target')).toHaveText(
    `Writes llama-ft@v3 into ${join(home, 'tv-restore')} (a new folder).`,
  );
  await page.getByRole('button', { name: 'Restore', exact: true }).click();
  await expect(page.getByTestId('restore-done')).toContainText(
    `written to ${join(home, 'tv-restore')}`,
  );
  const notice = page.getByRole('status').filter({ hasText: 'restored' });
  await expect(notice).toContainText(join(home, 'tv-restore'));
  expect(
    (await readFile(join(home, 'tv-restore', 'config.json'))).equals(
      await readFile(join(dir, 'v3', 'config.json')),
    ),
  ).toBe(true);
  await expect(stat(join(process.cwd(), '~'))).rejects.toThrow(/ENOENT/);
  // The notice sits clear of the sidebar, its × inside its box.
  const box = (await notice.boundingBox())!;
  const sidebar = (await page.getByRole('navigation', { name: 'Models' }).boundingBox())!;
  const close = (await notice.getByRole('button', { name: 'Dismiss' }).boundingBox())!;
  expect(box.x).toBeGreaterThanOrEqual(sidebar.x + sidebar.width);
  expect(close.x + close.width).toBeLessThanOrEqual(box.x + box.width);
  await page.screenshot({ path: `${shots}/restore-home.png`, fullPage: true });
});

test('settings in browser mode are read only, each with the variable it comes from; cache health says no Redis', async ({
  page,
}) => {
  await page.goto(serve.url);
  await page.getByRole('button', { name: 'Settings' }).click();
  await expect(page.getByTestId('settings-readonly')).toBeVisible();
  await expect(page.locator('.settings input')).toHaveCount(0);
  const fields = page.getByTestId('readonly-setting');
  await expect(fields.first()).toContainText(join(dir, 'repo'));
  await expect(fields.first()).toContainText('from TV_REPO or tv --repo');
  await expect(fields.filter({ hasText: 'Redis URL' })).toContainText('from TV_REDIS_URL');
  // A folder repository: no S3 connection to test, and it says so instead of failing a test.
  await expect(page.getByRole('button', { name: 'Test S3 connection' })).toHaveCount(0);
  await expect(page.getByTestId('s3-test-na')).toHaveText(
    'The S3 settings apply to an s3://bucket/prefix location; this repository is a folder.',
  );
  await page.screenshot({ path: `${shots}/settings-readonly.png`, fullPage: true });
  await page.getByRole('button', { name: 'Cache health' }).click();
  await expect(page.getByTestId('cache-health')).toContainText('No Redis configured');
  await page.screenshot({ path: `${shots}/cache-disabled.png`, fullPage: true });
});

test('a view opened while the app starts stays open when the model list arrives late', async ({
  page,
}) => {
  // Hold the server's reply to the first `models` call until Settings is open: on a loaded machine
  // the list can arrive after the user's first click, and picking the first model must not take
  // the user back to the model page.
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.routeWebSocket(
    (url) => url.pathname === '/api',
    (ws) => {
      const server = ws.connectToServer();
      const models = new Set<number>();
      ws.onMessage((message) => {
        const request = JSON.parse(String(message)) as { id: number; method: string };
        if (request.method === 'models') models.add(request.id);
        server.send(message);
      });
      server.onMessage(async (message) => {
        const reply = JSON.parse(String(message)) as { id?: number };
        if (reply.id !== undefined && models.has(reply.id)) await held;
        ws.send(message);
      });
    },
  );
  await page.goto(serve.url);
  await page.getByRole('button', { name: 'Settings' }).click();
  await expect(page.getByTestId('settings-readonly')).toBeVisible();
  release();
  await expect(page.getByRole('button', { name: 'llama-ft 3 versions' })).toBeVisible();
  await expect(page.getByTestId('settings-readonly')).toBeVisible();
});
