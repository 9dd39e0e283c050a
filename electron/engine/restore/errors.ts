/** A restore that cannot be done or finished: the message names the file, the chunk and why. */
export class RestoreError extends Error {
  override name = 'RestoreError';
}
