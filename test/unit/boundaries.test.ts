import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint();

async function restrictedImports(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'no-restricted-imports')
    .map((m) => m.message);
}

describe('layering lint rule', () => {
  it('refuses electron in the engine', async () => {
    const errors = await restrictedImports(
      'electron/engine/x.ts',
      "import { app } from 'electron';\nexport const a = app;\n",
    );
    expect(errors).toEqual([expect.stringContaining('plain Node')]);
  });

  it('refuses Node modules in the renderer, with or without the node: prefix', async () => {
    for (const mod of ['node:fs', 'fs', 'child_process', 'node:net']) {
      const errors = await restrictedImports(
        'renderer/src/x.ts',
        `import * as m from '${mod}';\nexport const a = m;\n`,
      );
      expect(errors, mod).toEqual([expect.stringContaining('never touches Node')]);
    }
  });

  it('refuses renderer imports of the engine and engine imports of front ends', async () => {
    expect(
      await restrictedImports(
        'renderer/src/x.ts',
        "import { Service } from '../../electron/engine/service';\nexport const a = Service;\n",
      ),
    ).toHaveLength(1);
    expect(
      await restrictedImports(
        'electron/engine/x.ts',
        "import { startServer } from '../server/index';\nexport const a = startServer;\n",
      ),
    ).toHaveLength(1);
  });

  it('lets the engine use Node and the renderer use the contract', async () => {
    expect(
      await restrictedImports(
        'electron/engine/x.ts',
        "import { readFile } from 'node:fs/promises';\nexport const a = readFile;\n",
      ),
    ).toEqual([]);
    expect(
      await restrictedImports(
        'renderer/src/x.ts',
        "import { methods } from '../../shared/contract';\nexport const a = methods;\n",
      ),
    ).toEqual([]);
  });
});
