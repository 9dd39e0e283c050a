// @ts-expect-error plain ESM script shared with `npm test`, no type declarations
import { ensureSystemDeps } from '../../scripts/system-deps.mjs';

export default function setup(): void {
  (ensureSystemDeps as () => void)();
}
