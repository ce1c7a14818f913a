/**
 * A Lambda handler whose dependencies are built on the first invocation of the process
 * and reused after: module import stays free of environment reads (tests import the
 * builders without any), and a missing variable still fails the first request loudly.
 */
export function lazyHandler<E, R, C = unknown>(build: () => (event: E, context: C) => Promise<R>) {
  let built: ((event: E, context: C) => Promise<R>) | undefined;
  return (event: E, context: C): Promise<R> => {
    built ??= build();
    return built(event, context);
  };
}
