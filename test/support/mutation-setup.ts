/**
 * Loaded only by `npm run mutate` (stryker.config.mjs): each mutant reruns every property
 * test that covers it, so the properties run 20 cases instead of fast-check's 100. A mutant
 * that only a rarer case would catch then counts as survived: the score is a lower bound.
 */
import fc from 'fast-check';

fc.configureGlobal({ numRuns: 20 });
