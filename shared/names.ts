/**
 * The rules for model and tag names (docs/format.md), in one place for the engine (which refuses
 * a bad name) and the app (which says what is wrong as it is typed).
 */

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

const shown = (name: string) => (name.length > 60 ? `${name.slice(0, 60)}…` : name);

/** What is wrong with a model name, or null. */
export function modelNameProblem(name: string): string | null {
  if (NAME.test(name) && !name.includes('..')) return null;
  return `invalid model name "${shown(name)}": use 1-100 letters, digits, ".", "_" or "-", starting with a letter or digit (no "/" or "..")`;
}

/**
 * What is wrong with a tag name, or null: a model name's rules, minus names a selector reads
 * otherwise (`latest`, `vN`) and hex that would read as a version id prefix.
 */
export function tagNameProblem(name: string): string | null {
  if (!NAME.test(name) || name.includes('..'))
    return `invalid tag name "${shown(name)}": use 1-100 letters, digits, ".", "_" or "-", starting with a letter or digit`;
  if (name === 'latest' || /^[vV]\d+$/.test(name))
    return `"${name}" cannot be a tag: MODEL@${name} already means a version (latest, vN); choose another name`;
  if (/^[0-9a-f]{4,64}$/.test(name))
    return `"${name}" cannot be a tag: it reads as a version id prefix; add a letter beyond a-f, or a "-"`;
  return null;
}
