/** cluster-key-slot ships no types in the version ioredis pins: the one function used here. */
declare module 'cluster-key-slot' {
  /** The Redis Cluster hash slot (0-16383) of a key, from its hash tag when it has one. */
  function calculate(value: string): number;
  export = calculate;
}
