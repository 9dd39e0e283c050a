import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The folder holding this installation's package.json (works from source and from out/). */
export function packageRoot(): string {
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the TensorVault installation folder');
    dir = parent;
  }
  return dir;
}
