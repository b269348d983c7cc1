// A memo for hot paths whose inputs repeat (one key's secret, one key's header): bounded, and
// emptied whole when full rather than tracking recency, since refilling costs only a recompute.

/**
 * `compute` with its results kept for up to `limit` distinct inputs. A `compute` that throws
 * stores nothing, so only good results are ever served from the memo.
 */
export function boundedMemo<T>(limit: number, compute: (input: string) => T): (input: string) => T {
  const results = new Map<string, T>();
  return (input) => {
    let result = results.get(input);
    if (result === undefined) {
      result = compute(input);
      if (results.size >= limit) results.clear();
      results.set(input, result);
    }
    return result;
  };
}
